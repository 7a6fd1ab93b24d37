"""The central's YAML config: strict, relative paths, errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import wire
from central.config import CentralConfig, ConfigError, DeviceConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "central.example.yaml"


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


# -- the shipped example ---------------------------------------------------------------------------


def test_the_example_config_loads_as_a_sub_district_would_run_it() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.data_dir == Path("/var/lib/garbagewatch-central")  # the systemd unit's StateDirectory
    assert (cfg.broker.port, cfg.broker.shared_group) == (8883, None)
    assert cfg.broker.tls is not None and cfg.broker.tls.cert == Path("/etc/garbagewatch/tls/central.crt")
    (city,) = cfg.cities
    assert (city.timezone, city.event_code, city.limits_hours) == ("Asia/Shanghai", "0102", {"0102": 4.0})
    assert city.spans() == [(8 * 60 + 30, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)]
    assert cfg.city_of("xinhua-rd-north") is city
    site, box = cfg.site("xinhua-rd-north"), cfg.device("box-017")
    assert site is not None and site.roles["responsible"] == ["zhang-wei"] and site.cameras["gate-east"].address
    assert box is not None and box.site == site.id
    assert cfg.notify.route("opened") == ["responsible", "dispatcher"]
    assert cfg.retention.evidence_days == 365
    # Placeholders only: no URL of the example can reach anyone.
    assert all("REPLACE" in url for url in cfg.notify.all_urls())


def _absent_keys(models: list[BaseModel], raws: list[dict[str, Any]], prefix: str) -> list[str]:
    """Keys of these models (one section, or the items of a list) that no raw mapping spells out."""
    absent = []
    for name in type(models[0]).model_fields:
        given = [(getattr(m, name), raw[name]) for m, raw in zip(models, raws, strict=True) if name in raw]
        if not given:
            absent.append(f"{prefix}{name}")
            continue
        inner: list[tuple[BaseModel, dict[str, Any]]] = []
        for value, raw in given:
            if isinstance(value, BaseModel) and isinstance(raw, dict):
                inner.append((value, raw))
            elif isinstance(value, list) and isinstance(raw, list):
                inner += [(v, r) for v, r in zip(value, raw, strict=True) if isinstance(v, BaseModel)]
            elif isinstance(value, dict) and isinstance(raw, dict):
                inner += [
                    (v, raw[k]) for k, v in value.items() if isinstance(v, BaseModel) and isinstance(raw[k], dict)
                ]
        if inner:
            absent += _absent_keys([m for m, _ in inner], [r for _, r in inner], f"{prefix}{name}.")
    return absent


def test_the_example_spells_out_every_key_of_every_section() -> None:
    """A key added to central.config must be added to the example too (with its comment)."""
    assert _absent_keys([load_config(EXAMPLE)], [yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))], "") == []
