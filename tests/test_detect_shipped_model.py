"""The shipped detector, models/garbagewatch.onnx, on labelled images from ../shared/datasets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detect import OnnxDetector, box_iou

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "garbagewatch.onnx"
DATASET = ROOT.parent / "shared" / "datasets" / "garbage-cn"
EXPOSED = {"garbage", "overflow"}
IMAGES = 20


def labelled_images(limit: int) -> list[tuple[Path, np.ndarray]]:
    """Validation images with at least one exposed-garbage label, and those labels as class-0/2 rows."""
    out = []
    for image in sorted((DATASET / "valid" / "images").glob("*.jpg")):
        label = DATASET / "valid" / "labels" / f"{image.stem}.txt"
        if not label.is_file():
            continue
        rows = np.loadtxt(label, ndmin=2) if label.stat().st_size else np.zeros((0, 5))
        rows = rows[np.isin(rows[:, 0], [0, 2])] if rows.shape[1] == 5 else np.zeros((0, 5))
        if len(rows):
            out.append((image, rows))
        if len(out) == limit:
            break
    return out


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    return OnnxDetector(MODEL)


def test_shipped_model_describes_itself(detector: OnnxDetector) -> None:
    info = detector.info
    assert info.class_names == ("garbage", "garbage_bin", "overflow")
    assert info.sha256 == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert all(v % 32 == 0 for v in info.input_hw)


def test_shipped_model_finds_labelled_garbage(detector: OnnxDetector) -> None:
    if not DATASET.is_dir():
        pytest.skip(f"{DATASET} is missing: the shared labelled images are needed")
    samples = labelled_images(IMAGES)
    assert len(samples) == IMAGES, "too few labelled validation images"
    found = 0
    for path, rows in samples:
        image = cv2.imread(str(path))
        assert image is not None, path
        frame = np.asarray(image, np.uint8)
        h, w = frame.shape[:2]
        d = detector.detect(frame)
        d = d.filter(d.with_names(EXPOSED))
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        truth = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
        if len(d) and (box_iou(d.xyxy, truth) >= 0.3).any():
            found += 1
    # A loose floor: the model card reports the real mAP; this catches a broken export or decode.
    assert found >= IMAGES // 2, f"exposed garbage found on only {found} of {IMAGES} labelled images"
