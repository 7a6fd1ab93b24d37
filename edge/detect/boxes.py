"""Box arithmetic on (N, 4) xyxy float arrays."""

from __future__ import annotations

import numpy as np

from edge.detect.core import FloatArray


def box_area(xyxy: FloatArray) -> FloatArray:
    """Area of each box; inverted boxes count as 0."""
    w = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None)
    h = np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    area: FloatArray = (w * h).astype(np.float32)
    return area


def clip_boxes(xyxy: FloatArray, frame_w: int, frame_h: int) -> FloatArray:
    """Boxes clipped to the frame [0, w] x [0, h] (a new array)."""
    out = np.asarray(xyxy, dtype=np.float32).copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, frame_w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, frame_h)
    return out


def cxcywh_to_xyxy(cxcywh: FloatArray) -> FloatArray:
    cx, cy, w, h = cxcywh[:, 0], cxcywh[:, 1], cxcywh[:, 2], cxcywh[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def unletterbox_boxes(
    xyxy: FloatArray, scale: float, pad_x: float, pad_y: float, frame_w: int, frame_h: int
) -> FloatArray:
    """Boxes in the model's letterboxed input mapped back to frame pixels, clipped to the frame.

    The letterbox resized the frame by `scale` and then added `pad_x` / `pad_y` pixels on the
    left / top, so the inverse is: remove the padding, divide by the scale.
    """
    out = np.asarray(xyxy, dtype=np.float32).copy()
    out[:, 0::2] = (out[:, 0::2] - pad_x) / scale
    out[:, 1::2] = (out[:, 1::2] - pad_y) / scale
    return clip_boxes(out, frame_w, frame_h)
