"""Piles followed across analyses: one `PileTrack` per spot, matched by box overlap."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.detect import box_iou

Box = tuple[float, float, float, float]


@dataclass(eq=False)
class PileTrack:
    """One pile's spot: a smoothed box and the times it was seen.

    `clean_for` is how long, in seconds, the spot has been seen clean in a row, counted only
    over valid analyses where the spot was visible; any sighting resets it.
    """

    track_id: int
    box: npt.NDArray[np.float64]
    confidence: float
    class_id: int
    first_seen: float
    last_seen: float
    hits: deque[float] = field(default_factory=deque)
    confirmed: bool = False
    clean_for: float = 0.0
    # Whether the previous analysis counted as clean for this track: only the time between two
    # consecutive clean, valid analyses is added to clean_for.
    clean_chain: bool = False
    reported_area: float = 0.0  # box area when last put in an event, to tell that the pile grew

    def hit(
        self, t: float, box: npt.NDArray[np.float32], confidence: float, class_id: int, smoothing: float
    ) -> None:
        # An exponential moving average: a pile does not move, so a jittery detector box is noise.
        self.box = (1.0 - smoothing) * self.box + smoothing * box.astype(np.float64)
        self.confidence = confidence
        self.class_id = class_id
        self.last_seen = t
        self.hits.append(t)
        self.clean_for = 0.0
        self.clean_chain = False

    def seen_clean(self, dt: float | None) -> None:
        """The spot was visible and empty in a valid analysis, `dt` seconds after the previous one."""
        if self.clean_chain and dt is not None:
            self.clean_for += dt
        self.clean_chain = True

    def forget_before(self, t: float) -> None:
        while self.hits and self.hits[0] < t:
            self.hits.popleft()

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    @property
    def as_box(self) -> Box:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return (x1, y1, x2, y2)


def match_tracks(
    tracks: list[PileTrack], boxes: npt.NDArray[np.float32], min_iou: float
) -> tuple[list[tuple[int, int]], list[int]]:
    """Greedy one-to-one matching, best overlap first.

    Returns (track index, box index) pairs and the indices of boxes that start a new pile. A box
    that overlaps an already matched track (the detector split one pile in two) starts nothing:
    one pile must give one track.
    """
    if not len(boxes):
        return [], []
    if not tracks:
        return [], list(range(len(boxes)))
    iou = box_iou(np.stack([t.box for t in tracks]).astype(np.float32), boxes)
    pairs: list[tuple[int, int]] = []
    used_tracks: set[int] = set()
    used_boxes: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        ti, bi = divmod(int(flat), len(boxes))
        if iou[ti, bi] < min_iou:
            break
        if ti not in used_tracks and bi not in used_boxes:
            pairs.append((ti, bi))
            used_tracks.add(ti)
            used_boxes.add(bi)
    fragments = {bi for bi in range(len(boxes)) if (iou[:, bi] >= min_iou).any()}
    fresh = [bi for bi in range(len(boxes)) if bi not in used_boxes and bi not in fragments]
    return pairs, fresh
