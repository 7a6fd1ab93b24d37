"""Detections, box arithmetic, IoU / NMS and the letterbox round trip."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect import (
    Detections,
    box_area,
    box_iou,
    class_aware_nms,
    clip_boxes,
    cxcywh_to_xyxy,
    letterbox,
    nms,
)

NAMES = ("garbage", "garbage_bin", "overflow")


def dets(boxes: list[list[float]], conf: list[float], cls: list[int]) -> Detections:
    return Detections(np.array(boxes, np.float32), np.array(conf, np.float32), np.array(cls), NAMES)


def test_detections_columns_are_typed_read_only_copies() -> None:
    boxes = np.array([[0, 0, 10, 10]], dtype=np.float64)
    d = Detections(boxes, [0.9], [2], NAMES)
    boxes[0, 0] = 5  # the caller's array stays theirs
    assert d.xyxy.dtype == np.float32 and d.confidence.dtype == np.float32 and d.class_id.dtype == np.int64
    assert d.xyxy[0, 0] == 0
    with pytest.raises(ValueError):
        d.xyxy[0, 0] = 1
    with pytest.raises(AttributeError):
        d.class_names = ()  # type: ignore[misc]
    assert d.names() == ["overflow"]


def test_empty_len_filter_and_names() -> None:
    empty = Detections.empty(NAMES)
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.class_names == NAMES
    d = dets([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], [0.1, 0.5, 0.9], [0, 1, 7])
    assert len(d) == 3
    assert d.names() == ["garbage", "garbage_bin", "class_7"]
    high = d.filter(d.confidence > 0.3)
    assert len(high) == 2 and high.names() == ["garbage_bin", "class_7"]
    assert d.with_names({"garbage", "class_7"}).tolist() == [True, False, True]
    assert len(d.filter(np.zeros(3, bool))) == 0
    with pytest.raises(ValueError):
        d.filter(np.array([1, 0, 1]))  # ints are not a mask


def test_detections_refuse_mismatched_columns() -> None:
    with pytest.raises(ValueError, match="length"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        Detections(np.zeros((2, 5)), np.zeros(2), np.zeros(2))


def test_area_clip_and_center_format() -> None:
    xyxy = np.array([[0, 0, 10, 20], [5, 5, 4, 4], [-10, -10, 2000, 1100]], np.float32)
    assert box_area(xyxy).tolist() == [200, 0, 2010 * 1110]
    assert clip_boxes(xyxy, 1920, 1080)[2].tolist() == [0, 0, 1920, 1080]
    assert cxcywh_to_xyxy(np.array([[50, 40, 20, 10]], np.float32)).tolist() == [[40, 35, 60, 45]]


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60], [3, 3, 3, 3]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0, 0.0], atol=1e-6)
    assert (iou[1] == 0).all()
    assert box_iou(a, np.zeros((0, 4), np.float32)).shape == (2, 0)


def test_nms_keeps_best_of_overlapping_and_is_class_aware() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.7], np.float32)
    assert nms(xyxy, scores, 0.45).tolist() == [1, 2]
    # The last box is the same spot but another class: a bin beside a pile is kept.
    assert class_aware_nms(xyxy, scores, np.array([0, 0, 0, 1]), 0.45).tolist() == [1, 3, 2]
    assert (
        class_aware_nms(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5
        ).size
        == 0
    )


@pytest.mark.parametrize(
    ("frame_hw", "input_hw"),
    [
        ((720, 1280), (384, 640)),
        ((1080, 1920), (640, 640)),
        ((480, 640), (640, 640)),
        ((300, 200), (384, 640)),
    ],
)
def test_letterbox_fits_input_and_maps_boxes_back(
    frame_hw: tuple[int, int], input_hw: tuple[int, int]
) -> None:
    frame = np.zeros((*frame_hw, 3), np.uint8)
    frame[:, :] = (10, 20, 30)
    out, lb = letterbox(frame, input_hw)
    assert out.shape == (*input_hw, 3) and out.dtype == np.uint8
    # Content is centred; everything else is the 114 grey ultralytics trains with.
    content_h, content_w = round(frame_hw[0] * lb.scale), round(frame_hw[1] * lb.scale)
    assert (out[lb.pad_y : lb.pad_y + content_h, lb.pad_x : lb.pad_x + content_w] == (10, 20, 30)).all()
    assert (out == 114).all(axis=2).sum() == input_hw[0] * input_hw[1] - content_h * content_w
    # A box in frame pixels, letterboxed forward by hand, maps back to itself.
    frame_box = np.array([[10, 20, frame_hw[1] / 2, frame_hw[0] - 1]], np.float32)
    input_box = frame_box * lb.scale + np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], np.float32)
    np.testing.assert_allclose(lb.to_frame(input_box), frame_box, atol=1e-3)


def test_letterbox_non_square_input_numbers() -> None:
    _, lb = letterbox(np.zeros((720, 1280, 3), np.uint8), (384, 640))
    assert (lb.scale, lb.pad_x, lb.pad_y) == (0.5, 0, 12)
    back = lb.to_frame(np.array([[100, 112, 200, 212], [-5, 0, 700, 500]], np.float32))
    assert back.tolist() == [[200, 200, 400, 400], [0, 0, 1280, 720]]  # clipped to the frame


def test_letterbox_refuses_non_images() -> None:
    with pytest.raises(ValueError, match="H x W x C"):
        letterbox(np.zeros((10, 10), np.uint8), (64, 64))
