"""Pairwise IoU and non-maximum suppression in numpy (the detector runs without torch)."""

from __future__ import annotations

import numpy as np

from edge.detect.boxes import box_area
from edge.detect.core import FloatArray, IntArray


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4): an (N, M) float32 matrix."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou.astype(np.float32)


def nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> IntArray:
    """Indices of the boxes kept by greedy NMS, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        overlap = box_iou(xyxy[best : best + 1], xyxy[rest])[0]
        order = rest[overlap <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def class_aware_nms(
    xyxy: FloatArray, scores: FloatArray, class_id: IntArray, iou_threshold: float
) -> IntArray:
    """NMS within each class only: a bin and the garbage piled beside it both survive.

    Shifting every class into its own coordinate range makes boxes of different classes never
    overlap, so one NMS pass does all classes.
    """
    if len(xyxy) == 0:
        return np.zeros((0,), dtype=np.int64)
    offset = float(np.max(np.abs(xyxy))) + 1.0
    shifted = xyxy + (np.asarray(class_id, dtype=np.float32) * offset)[:, None]
    return nms(shifted, scores, iou_threshold)
