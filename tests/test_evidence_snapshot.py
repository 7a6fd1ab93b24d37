from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from edge.evidence import draw_detections, encode_jpeg, encode_jpeg_with_boxes


@dataclass(frozen=True)
class Boxes:
    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_names: tuple[str, ...]


def frame() -> np.ndarray:
    img = np.zeros((240, 320, 3), np.uint8)
    img[:, :, 1] = np.linspace(0, 200, 320, dtype=np.uint8)[None, :]
    return img


def boxes() -> Boxes:
    return Boxes(
        xyxy=np.array([[40, 60, 120, 150], [200, 0, 330, 100]], np.float32),  # the second leaves the frame
        confidence=np.array([0.91, 0.4], np.float32),
        class_id=np.array([0, 7], np.int64),  # 7: no name; drawn as "7"
        class_names=("garbage",),
    )


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return np.asarray(img)


def test_jpeg_round_trip() -> None:
    img = frame()
    data = encode_jpeg(img, quality=95)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    decoded = decode(data)
    assert decoded.shape == img.shape
    assert np.abs(decoded.astype(int) - img.astype(int)).mean() < 3


def test_quality_changes_the_size() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert len(encode_jpeg(img, quality=30)) < len(encode_jpeg(img, quality=95))
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(img, quality=0)


def test_boxes_are_drawn_on_a_copy() -> None:
    img = frame()
    before = img.copy()
    drawn = draw_detections(img, boxes())
    assert np.array_equal(img, before)
    # The box's left edge is red (BGR), inside untouched.
    assert tuple(drawn[100, 40]) == (0, 0, 255)
    assert np.array_equal(drawn[100:140, 60:110], before[100:140, 60:110])
    # The label is drawn above the box.
    assert not np.array_equal(drawn[40:58, 40:120], before[40:58, 40:120])


def test_jpeg_with_boxes_differs_from_the_plain_one() -> None:
    img = frame()
    plain = decode(encode_jpeg(img))
    boxed = decode(encode_jpeg_with_boxes(img, boxes()))
    assert np.abs(plain.astype(int) - boxed.astype(int))[55:155, 35:125].max() > 100


def test_no_detections_draws_nothing() -> None:
    empty = Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ())
    assert np.array_equal(draw_detections(frame(), empty), frame())


def test_real_detections_type_is_accepted() -> None:
    core = pytest.importorskip("edge.detect.core")
    dets = core.Detections(
        xyxy=np.array([[10, 10, 50, 50]], np.float32),
        confidence=np.array([0.5], np.float32),
        class_id=np.array([0]),
        class_names=("garbage",),
    )
    assert tuple(draw_detections(frame(), dets)[30, 10]) == (0, 0, 255)


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)]
)
def test_bad_frames_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        encode_jpeg(bad)
