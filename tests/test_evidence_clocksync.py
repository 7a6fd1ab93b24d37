from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.evidence import clock_synchronised
from edge.evidence.clocksync import kernel_clock_synchronised, timedatectl_clock_synchronised


def test_answers_a_bool_without_raising() -> None:
    assert isinstance(clock_synchronised(), bool)
    assert kernel_clock_synchronised() in (True, False, None)


def fake_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    exe = tmp_path / "timedatectl"
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("script", "expected"),
    [("echo yes", True), ("echo no", False), ("echo maybe", None), ("exit 1", None), ("sleep 5", None)],
)
def test_timedatectl_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: bool | None
) -> None:
    fake_timedatectl(tmp_path, monkeypatch, script)
    assert timedatectl_clock_synchronised(timeout=0.5) is expected


def test_no_timedatectl_is_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert timedatectl_clock_synchronised() is None
