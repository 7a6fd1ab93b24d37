"""Model metadata parsing: literals only, never code."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.detect import ModelError, parse_imgsz, parse_names


def test_names_from_ultralytics_metadata() -> None:
    assert parse_names("{0: 'garbage', 1: 'garbage_bin', 2: 'overflow'}") == (
        "garbage",
        "garbage_bin",
        "overflow",
    )
    assert parse_names("['a', 'b']") == ("a", "b")
    assert parse_names("{1: 'b', 0: 'a'}") == ("a", "b")


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/gw-pwned')",  # code is refused, not run
        "{0: 'a', 2: 'c'}",  # a gap in the ids
        "{'0': 'a'}",
        "{0: 1}",
        "garbage",
        "",
    ],
)
def test_bad_names_are_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="names"):
        parse_names(text, tmp_path / "m.onnx")
    assert not Path("/tmp/gw-pwned").exists()


def test_imgsz() -> None:
    assert parse_imgsz("[384, 640]") == (384, 640)
    assert parse_imgsz("640") == (640, 640)
    assert parse_imgsz("[512]") == (512, 512)
    for bad in ("[0, 640]", "[1, 2, 3]", "'640'", "[640.0, 640]", "open('x')"):
        with pytest.raises(ModelError, match="imgsz"):
            parse_imgsz(bad)
