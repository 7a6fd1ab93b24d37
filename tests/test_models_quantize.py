"""models.quantize: which nodes of the shipped YOLO graph stay in float."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs the onnx package (dev extra)")

MODEL = Path(__file__).resolve().parents[1] / "models" / "garbagewatch.onnx"


def test_head_nodes_are_the_detect_outputs_and_tail_only() -> None:
    from models.quantize import head_nodes

    nodes = head_nodes(MODEL)
    assert nodes and all(n.startswith("/model.23/") for n in nodes)
    convs = sorted(n for n in nodes if n.endswith("/Conv"))
    assert convs == sorted([f"/model.23/cv{b}.{i}/cv{b}.{i}.2/Conv" for b in (2, 3) for i in range(3)]
                           + ["/model.23/dfl/conv/Conv"])
    assert "/model.23/Sigmoid" in nodes and "/model.23/dfl/Softmax" in nodes
    # the head's inner convolutions and everything before the head stay quantisable
    assert "/model.23/cv2.0/cv2.0.0/conv/Conv" not in nodes


def test_stem_is_the_convolution_on_the_input() -> None:
    from models.quantize import stem_nodes

    assert stem_nodes(MODEL) == ["/model.0/conv/Conv"]


def test_calibration_images_are_reproducible(tmp_path: Path) -> None:
    from models.quantize import calibration_images

    (tmp_path / "images").mkdir()
    for i in range(10):
        (tmp_path / "images" / f"{i:02d}.jpg").write_bytes(b"")
    first = calibration_images(tmp_path, 4)
    assert first == calibration_images(tmp_path, 4) and len(first) == 4
    assert first == sorted(first)
    with pytest.raises(FileNotFoundError):
        calibration_images(tmp_path / "empty", 4)
