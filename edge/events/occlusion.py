"""Seen clean, or merely hidden? The hook that can veto counting an analysis as clean.

`ExposureTracker.observe(..., occluded=...)` takes any `Occluded` callable: it gets the spot's box
(frame pixels) and answers True when something stands in front of it, so not seeing the pile
proves nothing. A later check can compare the spot with the garbage snapshot; the default here
uses detections of people and vehicles, and accepts (returns False) when the model has none of
those classes, as our 3-class garbage model does not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.detect import Detections
from edge.events.tracks import Box

Occluded = Callable[[Box], bool]

OCCLUDER_CLASSES = frozenset({"person", "car", "truck", "bus", "bicycle", "motorcycle", "tricycle"})


def occluded_by(
    detections: Detections, classes: frozenset[str] = OCCLUDER_CLASSES, min_cover: float = 0.3
) -> Occluded:
    """A hook that says a spot is hidden when an occluder box covers at least `min_cover` of it.

    Pass the frame's detections before zone filtering: the zones keep only garbage classes.
    """
    occluders = detections.filter(detections.with_names(classes)).xyxy

    def occluded(box: Box) -> bool:
        if not len(occluders):
            return False
        x1, y1, x2, y2 = box
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        if area <= 0:
            return False
        w = np.clip(np.minimum(occluders[:, 2], x2) - np.maximum(occluders[:, 0], x1), 0, None)
        h = np.clip(np.minimum(occluders[:, 3], y2) - np.maximum(occluders[:, 1], y1), 0, None)
        return bool(((w * h) / area >= min_cover).any())

    return occluded
