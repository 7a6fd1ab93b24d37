"""The edge's detector finds the boxes ultralytics finds with the same ONNX file.

The references in tests/vectors/parity-<model>.json were made once by ultralytics' own predict
(tests/vectors/make_parity.py, in a separate environment with torch): CI needs neither. Same
images, same thresholds; the edge must give the same number of boxes, and each reference box
must have an edge box of the same class at IoU >= 0.9 (letterbox rounding and float order move
a box by a pixel or two, never more).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.detect import OnnxDetector, box_iou

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "garbage-cn"
REFERENCES = sorted((ROOT / "tests" / "vectors").glob("parity-*.json"))
MIN_IOU = 0.9


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_shipped_model_has_references() -> None:
    shipped = {p.name for p in (ROOT / "models").glob("*.onnx")}
    assert shipped == {load(p)["model"] for p in REFERENCES}


@pytest.mark.parametrize("reference", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_references_were_made_for_the_shipped_file(reference: Path) -> None:
    data = load(reference)
    model = ROOT / "models" / data["model"]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == data["sha256"], (
        f"{model.name} changed since {reference.name} was made: rerun tests/vectors/make_parity.py")
    assert sum(len(row["boxes"]) for row in data["images"]) >= 10, "too few boxes to compare anything"


@pytest.mark.parametrize("reference", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_the_edge_finds_ultralytics_boxes(reference: Path) -> None:
    if not DATASET.is_dir():
        pytest.skip(f"{DATASET} is missing: the shared labelled images are needed")
    data = load(reference)
    detector = OnnxDetector(ROOT / "models" / data["model"], conf_default=data["confidence"], iou=data["iou"])
    for row in data["images"]:
        image = cv2.imread(str(DATASET / row["image"]))
        assert image is not None, row["image"]
        found = detector.detect(np.asarray(image, np.uint8))
        expected = np.array(row["boxes"], np.float32).reshape(-1, 6)
        assert len(found) == len(expected), f"{row['image']}: {len(found)} boxes, ultralytics {len(expected)}"
        if not len(expected):
            continue
        iou = box_iou(expected[:, :4], found.xyxy)
        same_class = expected[:, 5:6].astype(int) == found.class_id[None, :]
        best = np.where(same_class, iou, 0.0).max(axis=1)
        assert best.min() >= MIN_IOU, f"{row['image']}: a box matched at IoU {best.min():.3f} only"
