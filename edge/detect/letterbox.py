"""Letterbox: fit a frame into the model's input H x W keeping its aspect ratio, pad the rest.

Same geometry as ultralytics (resize, then centre with grey 114 padding), because that is what
the model was trained on; `Letterbox` keeps the scale and padding so boxes map back to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.detect.boxes import unletterbox_boxes
from edge.detect.core import FloatArray

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How one frame was put into the model input: frame pixel * scale + pad = input pixel."""

    scale: float
    pad_x: int
    pad_y: int
    frame_w: int
    frame_h: int

    def from_larger(self, frame_w: int, frame_h: int) -> Letterbox:
        """This transform for the frame the letterboxed image was scaled down from (boxes in its pixels)."""
        if (frame_w, frame_h) == (self.frame_w, self.frame_h):
            return self
        return Letterbox(scale=self.scale * self.frame_w / frame_w, pad_x=self.pad_x, pad_y=self.pad_y,
                         frame_w=frame_w, frame_h=frame_h)

    def to_frame(self, xyxy: FloatArray) -> FloatArray:
        """Boxes in input pixels -> boxes in frame pixels, clipped to the frame."""
        return unletterbox_boxes(xyxy, self.scale, self.pad_x, self.pad_y, self.frame_w, self.frame_h)


def letterbox(
    image: npt.NDArray[np.uint8], input_hw: tuple[int, int], pad_value: int = PAD_VALUE
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Return the image resized and padded to exactly `input_hw` (h, w), and the transform used."""
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"letterbox needs an H x W x C image, got shape {image.shape}")
    frame_h, frame_w = image.shape[:2]
    input_h, input_w = input_hw
    scale = min(input_h / frame_h, input_w / frame_w)
    new_w = max(1, round(frame_w * scale))
    new_h = max(1, round(frame_h * scale))
    if (new_w, new_h) != (frame_w, frame_h):
        # INTER_LINEAR both ways, as ultralytics does in training: the model should see the same pixels.
        image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR), np.uint8)
    pad_x = (input_w - new_w) // 2
    pad_y = (input_h - new_h) // 2
    padded = cv2.copyMakeBorder(
        image,
        pad_y,
        input_h - new_h - pad_y,
        pad_x,
        input_w - new_w - pad_x,
        cv2.BORDER_CONSTANT,
        value=(pad_value,) * 3,
    )
    return np.asarray(padded, np.uint8), Letterbox(
        scale=scale, pad_x=pad_x, pad_y=pad_y, frame_w=frame_w, frame_h=frame_h
    )
