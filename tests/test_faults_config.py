"""A bad edge config: `garbagewatch edge run` exits 2 with one line naming file:line: key, nothing starts.

Runs the real command line in a subprocess, as an installer would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wire

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
device_id: box-1
site: site-a
key_file: device.key
broker: {port: 1883}
cameras:
  - id: cam-1
    url: rtsp://127.0.0.1:8554/cam-1
"""


def edge_run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garbagewatch.cli", "edge", "run", "--config", str(config)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    wire.DeviceKey.generate().save(tmp_path / "device.key", tmp_path / "device.pub")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (GOOD.replace("    url:", "    zonez: []\n    url:"), 7, "cameras.0.zonez"),  # a typo
        (GOOD.replace("port: 1883", "port: 99999"), 4, "broker.port"),  # out of range
        (GOOD.replace("id: cam-1", "id: cam 1"), 6, "cameras.0.id"),  # not an id
        (GOOD + "  - {id: cam-2, url: x\n", 9, "not valid YAML"),  # an unclosed brace at line 8
    ],
    ids=["unknown-key", "port-range", "bad-id", "broken-yaml"],
)
def test_a_config_error_is_one_line_with_file_line_and_key(
    config_dir: Path, text: str, line: int, key: str
) -> None:
    config = config_dir / "edge.yaml"
    config.write_text(text)
    result = edge_run(config)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # (a log line: the format may add a time and a level)
    assert f"{config}:{line}: " in lines[0] and key in lines[0], lines[0]
    assert "Traceback" not in result.stderr and not result.stdout


def test_a_missing_model_file_is_one_line_too(config_dir: Path) -> None:
    config = config_dir / "edge.yaml"
    config.write_text(GOOD.replace("broker:", "detector: {model: nowhere.onnx}\nbroker:"))
    result = edge_run(config)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere.onnx" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
