"""Seen clean, or only not detected? Each camera remembers what its ground looks like clean.

A pile that the detector stops finding may be gone, or hidden by a parked car or a person
standing over it, or still there and missed in this frame. Only the first may count towards
`clear_seconds`. `SpotReference` keeps, per camera, a slowly learned grey image of the scene
(a running average, so passers-by fade out) that is never updated where garbage is tracked or
detected: under a pile it keeps the ground as it was before the pile came. An analysis that does
not find a tracked pile counts as clean only when the spot looks like that clean ground again
(normalised cross-correlation, which ignores a change of brightness or contrast); anything else
there - the pile, a car, a person, a tarpaulin - is "hidden", neither clean nor present.

It can only vouch for ground it has seen clean: a pile already there when the daemon started
has no clean reference, and then "not detected" counts as clean, as it would without this
check (`trusted` says which case applies). At night the reference learned by day may no longer
match; the pile then clears once the spot looks as it did, which errs on the side of keeping an
order open rather than closing it on a car.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.events.occlusion import Occluded
from edge.events.tracks import Box

__all__ = ["SpotReference"]

Gray = npt.NDArray[np.float32]


class SpotReference:
    """One camera's clean view of its ground, learned from the analysed frames."""

    def __init__(self, width: int = 320, learn_rate: float = 0.1, min_clean_looks: int = 5,
                 clean_ncc: float = 0.6, flat_std: float = 4.0, flat_mean_diff: float = 12.0,
                 busy_margin: float = 0.15) -> None:
        self.width = width  # the reference is kept this wide (height by aspect): cheap, and noise averages out
        self.learn_rate = learn_rate  # per analysis: 0.1 every 2 s forgets a passer-by in about 20 s
        self.min_clean_looks = min_clean_looks  # analyses a spot must be seen free before it is trusted
        self.clean_ncc = clean_ncc  # at least this correlation with the clean ground counts as clean
        self.flat_std = flat_std  # below this spread (grey levels) a spot is flat: compare its brightness
        self.flat_mean_diff = flat_mean_diff
        self.busy_margin = busy_margin  # boxes grow by this share on each side before masking
        self._background: Gray | None = None
        self._looks: npt.NDArray[np.uint16] | None = None  # analyses each pixel was learned while free
        self._scale = 1.0

    def _small(self, image: npt.NDArray[np.uint8], frame_width: int | None) -> Gray:
        h, w = image.shape[:2]
        self._scale = self.width / (frame_width or w)  # boxes are in camera-frame pixels
        size = (self.width, max(1, round(h * self._scale)))
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), np.float32)

    def _rect(self, box: Box, shape: tuple[int, ...], margin: float = 0.0) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = (v * self._scale for v in box)
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        h, w = shape[:2]
        left, top = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
        right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        return left, top, max(left, right), max(top, bottom)

    def trusted(self, box: Box) -> bool:
        """Whether the spot under `box` has been seen free of garbage often enough to compare with."""
        if self._looks is None:
            return False
        left, top, right, bottom = self._rect(box, self._looks.shape)
        region = self._looks[top:bottom, left:right]
        return bool(region.size) and int(np.percentile(region, 10)) >= self.min_clean_looks

    def looks_clean(self, current: Gray, box: Box) -> bool:
        """Whether `box` in `current` (a frame made small by this reference) shows the clean ground."""
        assert self._background is not None
        left, top, right, bottom = self._rect(box, current.shape)
        if right - left < 2 or bottom - top < 2:
            return True  # smaller than a pixel of the reference: nothing to compare
        now = current[top:bottom, left:right].astype(np.float64)
        ref = self._background[top:bottom, left:right].astype(np.float64)
        now_std, ref_std = float(now.std()), float(ref.std())
        if now_std < self.flat_std or ref_std < self.flat_std:
            # A flat spot (bare asphalt) has no pattern to correlate: both flat and alike in brightness.
            return max(now_std, ref_std) < self.flat_std and abs(float(now.mean() - ref.mean())) < self.flat_mean_diff
        ncc = float(((now - now.mean()) * (ref - ref.mean())).mean() / (now_std * ref_std))
        return ncc >= self.clean_ncc

    def hidden_hook(self, image: npt.NDArray[np.uint8], frame_width: int | None = None) -> tuple[Occluded, Gray]:
        """For one analysis: the `occluded` hook for the trackers, and the small frame for `learn`.

        `frame_width`: the camera frame's width when `image` is a scaled-down copy of it."""
        current = self._small(image, frame_width)
        if self._background is None or self._background.shape != current.shape:
            self._background, self._looks = None, None  # first frame, or the camera changed resolution

        def hidden(box: Box) -> bool:
            return self._background is not None and self.trusted(box) and not self.looks_clean(current, box)

        return hidden, current

    def learn(self, current: Gray, busy: Sequence[Box]) -> None:
        """Learn this analysis' frame everywhere but under `busy` boxes (tracked and detected garbage)."""
        if self._background is None or self._looks is None:
            self._background = current.copy()
            self._looks = np.zeros(current.shape, np.uint16)
            free = np.ones(current.shape, bool)
        else:
            free = np.ones(current.shape, bool)
            for box in busy:
                left, top, right, bottom = self._rect(box, current.shape, self.busy_margin)
                free[top:bottom, left:right] = False
            blended = cv2.addWeighted(self._background, 1 - self.learn_rate, current, self.learn_rate, 0)
            self._background[free] = blended[free]
        for box in busy:  # even the first frame must not count as a clean look where garbage is
            left, top, right, bottom = self._rect(box, current.shape, self.busy_margin)
            free[top:bottom, left:right] = False
        looks = self._looks
        looks[free] = np.minimum(looks[free] + 1, np.iinfo(np.uint16).max - 1)
