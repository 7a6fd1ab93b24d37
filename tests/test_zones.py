"""Zones, masks, minimum size and classes: which boxes count where."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect import Detections
from edge.zones import WHOLE_FRAME, Zone, ZoneFilter, points_in_polygon
from wire import WireError

NAMES = ("garbage", "garbage_bin", "overflow")
W, H = 1000, 500


def dets(rows: list[tuple[float, float, float, float, int]]) -> Detections:
    arr = np.array([r[:4] for r in rows], np.float32).reshape(-1, 4)
    return Detections(arr, np.full(len(rows), 0.9, np.float32), np.array([r[4] for r in rows]), NAMES)


def test_default_is_whole_frame_exposed_classes_only() -> None:
    d = dets([(10, 10, 50, 50, 0), (100, 100, 200, 200, 1), (800, 400, 1000, 500, 2)])
    out = ZoneFilter().apply(d, W, H)
    assert list(out) == ["all"]
    # The bin is not exposed garbage; the overflow standing on the frame's bottom edge counts.
    assert out["all"].names() == ["garbage", "overflow"]


def test_zone_membership_is_by_ground_point() -> None:
    left = Zone("left", ((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
    right = Zone("right", ((0.5, 0), (1, 0), (1, 1), (0.5, 1)))
    road = Zone("road", ((0, 0.6), (1, 0.6), (1, 1), (0, 1)))
    zf = ZoneFilter(zones=(left, right, road))
    # Mostly left, but it stands at x = 550: right. A tall pile reaching up from the road is on the road.
    d = dets([(300, 100, 800, 200, 0), (100, 50, 200, 450, 0)])
    out = zf.apply(d, W, H)
    assert set(out) == {"left", "right", "road"}
    np.testing.assert_array_equal(out["right"].xyxy, d.xyxy[:1])
    np.testing.assert_array_equal(out["left"].xyxy, d.xyxy[1:])
    np.testing.assert_array_equal(out["road"].xyxy, d.xyxy[1:])


def test_masks_min_area_and_custom_classes() -> None:
    station = ((0.8, 0.8), (1.0, 0.8), (1.0, 1.0), (0.8, 1.0))  # a sanctioned collection point
    zf = ZoneFilter(
        masks=(station,), min_box_area=0.01, exposed_classes=frozenset({"garbage", "garbage_bin"})
    )
    d = dets(
        [
            (850, 420, 950, 480, 0),  # in the mask
            (10, 10, 30, 30, 0),  # 400 px^2 < 1% of 500 000
            (100, 100, 200, 200, 1),  # a bin counts with these classes
            (300, 300, 400, 400, 2),  # overflow does not
        ]
    )
    out = zf.apply(d, W, H)["all"]
    np.testing.assert_array_equal(out.xyxy, d.xyxy[2:3])


def test_every_zone_reported_even_when_clean() -> None:
    zf = ZoneFilter(zones=(Zone("a"), Zone("b", ((0, 0), (0.1, 0), (0.1, 0.1)))))
    out = zf.apply(Detections.empty(NAMES), W, H)
    assert {k: len(v) for k, v in out.items()} == {"a": 0, "b": 0}
    assert out["a"].class_names == NAMES


def test_point_in_polygon_edges_and_concave() -> None:
    # An L shape: the notch at the top right is outside.
    ell = ((0, 0), (0.5, 0), (0.5, 0.5), (1, 0.5), (1, 1), (0, 1))
    pts = np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.5, 0.25], [1.0, 1.0], [1.01, 0.7]])
    assert points_in_polygon(pts, ell).tolist() == [True, False, True, True, True, False]
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 1]])
    assert points_in_polygon(corners, WHOLE_FRAME).all()


def test_bad_config_fails_loudly() -> None:
    with pytest.raises(WireError):
        Zone("../etc")  # zone names travel on the wire and into paths
    with pytest.raises(ValueError, match="outside"):
        Zone("z", ((0, 0), (1.5, 0), (1, 1)))
    with pytest.raises(ValueError, match="3 points"):
        Zone("z", ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match="repeat"):
        ZoneFilter(zones=(Zone("a"), Zone("a")))
    with pytest.raises(ValueError, match="min_box_area"):
        ZoneFilter(min_box_area=2)
    with pytest.raises(ValueError, match="finite"):
        ZoneFilter(masks=(((0, 0), (float("nan"), 0), (1, 1)),))
    with pytest.raises(ValueError, match="frame size"):
        ZoneFilter().apply(Detections.empty(), 0, 10)
