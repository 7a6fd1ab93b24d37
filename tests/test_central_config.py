"""The central's YAML config: strict, relative paths, errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import wire
from central.config import CentralConfig, ConfigError, DeviceConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text(text)
    return path


def test_a_full_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    key = wire.DeviceKey.generate()
    key.save(tmp_path / "box.key", tmp_path / "box.pub")
    inline = wire.DeviceKey.generate()
    pem = DeviceConfig.for_key("box-2", inline.public).public_key_pem
    assert pem is not None
    path = write(
        tmp_path,
        f"""
data_dir: var/central
broker:
  host: mqtt.example
  port: 8883
  client_id: central-1
  username: central
  password: secret
  tls: {{ca: certs/ca.pem}}
devices:
  - {{device_id: box-1, public_key_file: box.pub, site: site-a}}
  - device_id: box-2
    public_key_pem: |
{"".join("      " + line + chr(10) for line in pem.splitlines())}
notify:
  urls: ["json://127.0.0.1:9/hook", "mailto://user:pass@example.com"]
  console_url: https://gw.example
work_orders: {{event_code: "0203", deadline_hours: 2}}
limits: {{max_file_bytes: 1000000}}
""",
    )
    cfg = load_config(path)
    assert cfg.data_dir == tmp_path / "var/central"
    assert cfg.db_path == tmp_path / "var/central/garbagewatch.db"
    assert cfg.broker.tls is not None and cfg.broker.tls.ca == tmp_path / "certs/ca.pem"
    box1, box2 = cfg.devices
    assert box1.key_id == key.key_id and box1.site == "site-a"
    assert box2.key_id == inline.key_id and box2.site is None
    assert cfg.device("box-2") is box2 and cfg.device("box-3") is None
    assert (cfg.work_orders.event_code, cfg.work_orders.deadline_hours) == ("0203", 2.0)


def test_defaults_need_only_a_data_dir(tmp_path: Path) -> None:
    cfg = CentralConfig(data_dir=tmp_path)
    assert (cfg.broker.port, cfg.work_orders.event_code, cfg.work_orders.deadline_hours) == (
        1883,
        "0102",
        4.0,
    )
    assert cfg.devices == [] and cfg.notify.urls == []


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("data_dir: d\nbrokr: {}\n", "brokr", "Extra inputs"),
        ("data_dir: d\nbroker: {port: 70000}\n", "broker.port", "less than or equal"),
        (
            "data_dir: d\ndevices: [{device_id: Box, public_key_pem: x}]\n",
            "devices.0.device_id",
            "not a valid id",
        ),
        ("data_dir: d\ndevices: [{device_id: box}]\n", "devices.0", "exactly one"),
        ("data_dir: d\ndevices: [{device_id: box, public_key_file: nope.pub}]\n", "devices.0", "nope.pub"),
        ("data_dir: d\nnotify: {urls: ['bogus://x']}\n", "notify.urls", "bogus://"),
        ("data_dir: d\nwork_orders: {deadline_hours: 0}\n", "work_orders.deadline_hours", "greater than 0"),
        ("broker: {}\n", "data_dir", "Field required"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: {key}: " in str(err.value) and words in str(err.value)


def test_a_device_listed_twice_is_refused(tmp_path: Path) -> None:
    key = wire.DeviceKey.generate()
    d = DeviceConfig.for_key("box-1", key.public)
    with pytest.raises(ValueError, match="listed twice"):
        CentralConfig(data_dir=tmp_path, devices=[d, d])


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- 1\n"))
