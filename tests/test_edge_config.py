"""The edge config file: the shipped example, errors that name file:line: key, and check-config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import wire
from edge.cli import main
from edge.config import CameraConfig, ConfigError, EdgeConfig, load_edge_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "edge.example.yaml"
DEMO = REPO / "configs" / "edge.demo.yaml"
# Keys whose example value is deliberately not the default (a real broker with TLS).
EXAMPLE_NOT_DEFAULT = {"broker.host", "broker.port", "broker.tls"}

MINIMAL = """\
device_id: box-1
site: site-a
key_file: device.key
cameras:
  - id: cam-1
    url: rtsp://127.0.0.1:8554/cam-1
    zones:
      - name: kerb
        polygon: [[0, 0.5], [1, 0.5], [1, 1]]
"""


def write(tmp_path: Path, text: str, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_edge_config(path, **kwargs)
    return str(info.value).splitlines()


def with_key(tmp_path: Path) -> None:
    wire.DeviceKey.generate().save(tmp_path / "device.key", tmp_path / "device.pub")


# -- the shipped examples --------------------------------------------------------------------------


def test_example_validates_with_two_cameras_zones_and_a_mask() -> None:
    config = load_edge_config(EXAMPLE)
    assert [c.id for c in config.cameras] == ["gate-east", "market-lane"]
    gate = config.cameras[0].zone_filter()
    assert [z.name for z in gate.zones] == ["kerb", "bin-corner"] and len(gate.masks) == 1
    assert config.broker.tls is not None and config.broker.tls.key.name == "client.key"
    assert config.key_file == Path("/var/lib/garbagewatch/device.key")


def _walk(model: BaseModel, raw: dict[str, Any], prefix: str) -> list[str]:
    """Keys of `model` missing from the example, or set there to something other than the default."""
    problems = []
    for name, field in type(model).model_fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            problems.append(f"{key}: missing")
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel) and isinstance(raw[name], dict):
            problems += _walk(value, raw[name], f"{key}.")
        elif not field.is_required() and key not in EXAMPLE_NOT_DEFAULT:
            default = field.get_default(call_default_factory=True)
            if value != default:
                problems.append(f"{key}: {value!r} is not the default {default!r}")
    return problems


def test_example_lists_every_key_with_its_default() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    config = load_edge_config(EXAMPLE)
    assert _walk(config, raw, "") == []
    # Every camera key appears on at least one example camera.
    camera_keys = set().union(*(cam.keys() for cam in raw["cameras"]))
    assert set(CameraConfig.model_fields) <= camera_keys


def test_demo_config_validates_against_a_local_broker() -> None:
    config = load_edge_config(DEMO)
    assert (config.broker.host, config.broker.port, config.broker.tls) == ("127.0.0.1", 1883, None)
    assert config.cameras[0].url == "rtsp://127.0.0.1:8554/cam-1"
    assert config.key_file.resolve() == REPO / "demo-data" / "edge" / "device.key"


# -- errors name file, line and key ----------------------------------------------------------------


def test_unknown_key_names_file_line_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    zones:\n", "    zonez:\n"))
    assert errors_of(path) == [f"{path}:7: cameras.0.zonez: unknown key (check its spelling and indentation)"]


def test_unknown_top_level_and_nested_keys_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "brokr:\n  host: x\nspool:\n  quota: 10\n")
    assert sorted(line.split(": ")[0:2] for line in errors_of(path)) == [
        [f"{path}:10", "brokr"], [f"{path}:13", "spool.quota"]]


def test_polygon_point_outside_the_frame_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("[1, 0.5]", "[1.5, 0.5]"))
    (line,) = errors_of(path)
    assert line.startswith(f"{path}:9: cameras.0.zones.0.polygon: ")
    assert "(1.5, 0.5) is outside [0, 1]" in line


def test_mask_is_checked_like_a_zone(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    masks:\n      - [[0, 0], [0.2, 0]]\n")
    (line,) = errors_of(path)
    assert line.startswith(f"{path}:11: cameras.0.masks.0: ") and "at least 3 points" in line


def test_duplicate_camera_id_points_at_the_repeat(tmp_path: Path) -> None:
    text = MINIMAL + "  - id: cam-2\n    url: rtsp://b\n  - id: cam-1\n    url: rtsp://c\n"
    path = write(tmp_path, text)
    assert errors_of(path) == [
        f"{path}:12: cameras.2.id: camera id 'cam-1' is used already (item 0): ids must be unique"]


def test_duplicate_zone_name_points_at_the_repeat(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "      - name: kerb\n")
    (line,) = errors_of(path)
    assert line.startswith(f"{path}:10: cameras.0.zones.1.name: zone name 'kerb' is used already")


@pytest.mark.parametrize(("old", "new", "line", "key"), [
    ("id: cam-1", "id: Cam/1", 5, "cameras.0.id"),
    ("site: site-a", "site: ../etc", 2, "site"),
    ("name: kerb", "name: 'kerb zone'", 8, "cameras.0.zones.0.name"),
    ("device_id: box-1", "device_id: box.1", 1, "device_id"),
])
def test_bad_id_characters_name_file_line_and_key(tmp_path: Path, old: str, new: str, line: int, key: str) -> None:
    path = write(tmp_path, MINIMAL.replace(old, new))
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:{line}: {key}: ") and "is not a valid id" in error


def test_bad_values_and_a_missing_key(tmp_path: Path) -> None:
    text = (MINIMAL.replace("site: site-a\n", "")
            + "broker:\n  port: 70000\ndetector:\n  per_class_confidence:\n    garbage: 1.5\n")
    path = write(tmp_path, text)
    keys = {line.split(": ")[1]: line.split(": ")[0] for line in errors_of(path)}
    assert keys == {"site": f"{path}:1", "broker.port": f"{path}:10",
                    "detector.per_class_confidence.garbage": f"{path}:13"}


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    (line,) = errors_of(write(tmp_path, "device_id: [unclosed\n"))
    assert "not valid YAML" in line and line.startswith(str(tmp_path / "edge.yaml"))
    (line,) = errors_of(write(tmp_path, "- a list\n"))
    assert line.endswith(":1: the top level must be a mapping of keys")


# -- checks against the box's files (check-config and run) -----------------------------------------


def test_files_are_checked_only_when_asked(tmp_path: Path) -> None:
    text = MINIMAL + "broker:\n  tls:\n    ca: tls/ca.crt\n    cert: tls/client.crt\n    key: tls/client.key\n"
    path = write(tmp_path, text)
    config = load_edge_config(path)  # elsewhere than the box: paths are resolved, not opened
    assert config.broker.tls is not None and config.broker.tls.ca == tmp_path / "tls" / "ca.crt"
    lines = errors_of(path, check_files=True)
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{path}:3", "key_file"], [f"{path}:12", "broker.tls.ca"],
        [f"{path}:13", "broker.tls.cert"], [f"{path}:14", "broker.tls.key"]]
    assert "garbagewatch edge keygen" in lines[0]


def test_tls_files_that_do_not_load_are_refused(tmp_path: Path) -> None:
    with_key(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    text = MINIMAL + "broker:\n  tls:\n    ca: junk.pem\n    cert: junk.pem\n    key: junk.pem\n"
    (line,) = errors_of(write(tmp_path, text), check_files=True)
    assert ":11: broker.tls: " in line and "the TLS files do not load" in line


def test_class_names_must_be_the_models(tmp_path: Path) -> None:
    with_key(tmp_path)
    text = (MINIMAL + "    exposed_classes: [garbage, overflw]\n"
            + "detector:\n  per_class_confidence:\n    garbge: 0.5\n")
    path = write(tmp_path, text)
    assert load_edge_config(path).cameras[0].exposed_classes == ["garbage", "overflw"]
    lines = errors_of(path, check_files=True)
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{path}:13", "detector.per_class_confidence.garbge"], [f"{path}:10", "cameras.0.exposed_classes.1"]]
    assert "the model's classes are garbage, garbage_bin, overflow" in lines[0]


# -- garbagewatch edge check-config ----------------------------------------------------------------


def test_check_config_ok_exits_0_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_key(tmp_path)
    path = write(tmp_path, MINIMAL)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: ok: device box-1, site site-a, 1 camera(s)" in out
    assert "camera cam-1: zones kerb" in out and "without TLS" in out
    assert wire.DeviceKey.load(tmp_path / "device.key").key_id in out
    assert "garbagewatch" in out and "(variant auto: " in out  # which shipped model, and why


def test_check_config_errors_exit_2_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_key(tmp_path)
    text = MINIMAL.replace("    zones:\n", "    zonez:\n").replace("site: site-a", "site: Site A")
    path = write(tmp_path, text)
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{path}:") for line in lines)
    assert lines[0].startswith(f"{path}:2: site: ") and lines[1].startswith(f"{path}:7: cameras.0.zonez: ")


def test_check_config_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'nope.yaml'}: cannot read")


def test_check_config_of_the_example_off_the_box_names_the_missing_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Here (not an installed box) the example's key and TLS files do not exist: said, line by line.
    assert main(["check-config", str(EXAMPLE)]) == 2
    keys = [line.split(": ")[1] for line in capsys.readouterr().err.splitlines()]
    assert keys == ["key_file", "broker.tls.ca", "broker.tls.cert", "broker.tls.key"]


def test_edge_config_in_code_needs_no_files() -> None:
    # The demo and the tests build configs in code: no file checks there.
    config = EdgeConfig(device_id="d", site="s", key_file=Path("/nonexistent/key"),
                        cameras=[CameraConfig(id="c", url="rtsp://x")])
    assert config.cameras[0].zones[0].name == "all"
