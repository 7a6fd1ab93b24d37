"""JPEG snapshots of a frame, plain and with the detections drawn on a copy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["DetectionsLike", "draw_detections", "encode_jpeg", "encode_jpeg_with_boxes"]

BgrImage = npt.NDArray[np.uint8]

# BGR colours, one per class id (cycled): distinct on both asphalt and greenery.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 255),
    (0, 200, 255),
    (255, 0, 255),
    (255, 128, 0),
    (0, 255, 0),
    (255, 255, 0),
)


class DetectionsLike(Protocol):
    """What drawing needs from edge.detect.Detections (or anything shaped like it)."""

    @property
    def xyxy(self) -> npt.NDArray[Any]: ...
    @property
    def confidence(self) -> npt.NDArray[Any]: ...
    @property
    def class_id(self) -> npt.NDArray[Any]: ...
    @property
    def class_names(self) -> Sequence[str]: ...


def _check_frame(frame: BgrImage) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {type(frame).__name__} {shape}")


def encode_jpeg(frame: BgrImage, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR uint8 frame; `quality` 1-100."""
    _check_frame(frame)
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    ok, buf = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"cv2 could not encode a {frame.shape} frame as JPEG")
    return bytes(buf.tobytes())


def _label(detections: DetectionsLike, i: int) -> str:
    cid = int(detections.class_id[i])
    names = detections.class_names
    name = names[cid] if 0 <= cid < len(names) else str(cid)
    return f"{name} {float(detections.confidence[i]):.2f}"


def draw_detections(frame: BgrImage, detections: DetectionsLike, thickness: int = 2) -> BgrImage:
    """A copy of `frame` with each box and its 'class confidence' label drawn; `frame` is untouched."""
    _check_frame(frame)
    canvas = frame.copy()
    h, w = canvas.shape[:2]
    scale = max(0.4, min(w, h) / 1000.0)
    for i in range(len(detections.xyxy)):
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
        x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
        y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
        color = PALETTE[int(detections.class_id[i]) % len(PALETTE)]
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        label = _label(detections, i)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        # Label above the box, or inside it when the box touches the top edge.
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y1 + th + 4
        cv2.rectangle(canvas, (x1, ty - th - 2), (min(x1 + tw + 4, w - 1), ty + base), color, cv2.FILLED)
        white = (255, 255, 255)
        cv2.putText(canvas, label, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)
    return canvas


def encode_jpeg_with_boxes(frame: BgrImage, detections: DetectionsLike, quality: int = 90) -> bytes:
    """JPEG bytes of `frame` with `detections` drawn on a copy."""
    return encode_jpeg(draw_detections(frame, detections), quality)
