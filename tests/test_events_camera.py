"""One camera, several zones: detections -> ZoneFilter -> CameraExposure -> events per zone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.detect import Detections
from edge.events import CameraExposure, ExposureEvent
from edge.zones import Zone, ZoneFilter
from wire import WireError

NAMES = ("garbage", "garbage_bin", "overflow")
W, H = 1280, 720


def frame_dets(*boxes: tuple[float, float, float, float]) -> Detections:
    arr = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(arr, np.full(len(arr), 0.7, np.float32), np.zeros(len(arr), np.int64), NAMES)


def test_zones_have_their_own_events() -> None:
    zones = ZoneFilter(
        zones=(
            Zone("left", ((0, 0), (0.5, 0), (0.5, 1), (0, 1))),
            Zone("right", ((0.5, 0), (1, 0), (1, 1), (0.5, 1))),
        )
    )
    ids = (f"{i:016x}" for i in itertools.count(1))
    camera = CameraExposure("cam-1", zones.zone_names, new_id=lambda: next(ids))
    left_pile, right_pile = (100, 400, 300, 600), (900, 400, 1100, 600)
    events: list[ExposureEvent] = []
    for t in range(400):
        boxes = [left_pile] + ([right_pile] if t < 100 else [])
        events += camera.observe(float(t), zones.apply(frame_dets(*boxes), W, H))
    assert [(e.kind, e.zone) for e in events] == [
        ("confirmed", "left"),
        ("confirmed", "right"),
        ("cleared", "right"),
    ]
    assert events[0].event_id != events[1].event_id == events[2].event_id


def test_missing_zone_is_not_clean() -> None:
    camera = CameraExposure("cam-1", ["a"])
    events: list[ExposureEvent] = []
    for t in range(70):
        events += camera.observe(float(t), {"a": frame_dets((0, 0, 50, 50))})
    assert [e.kind for e in events] == ["confirmed"]
    for t in range(70, 600):
        assert camera.observe(float(t), {}) == []  # a caller bug must not clear the pile
    assert camera.trackers["a"].state == "ongoing"


def test_camera_and_zone_names_are_checked() -> None:
    with pytest.raises(WireError):
        CameraExposure("Cam 1", ["all"])
    with pytest.raises(ValueError, match="no zones"):
        CameraExposure("cam-1", [])
