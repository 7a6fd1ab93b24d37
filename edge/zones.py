"""Which detections count, and where: zones, masks, minimum size and the exposed-garbage classes.

Polygons are in normalised [0, 1] frame coordinates, so a zone survives a change of stream
resolution (main stream vs sub stream) unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.detect import Detections, box_area
from edge.detect.core import BoolArray
from wire.ids import check_id

Point = tuple[float, float]
Polygon = tuple[Point, ...]

WHOLE_FRAME: Polygon = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
DEFAULT_EXPOSED_CLASSES = frozenset({"garbage", "overflow"})  # a garbage_bin alone is not exposed garbage
# Points within this distance (normalised) of a polygon's edge are inside: a box standing on the
# frame's bottom edge belongs to the whole-frame zone.
_EDGE_TOLERANCE = 1e-6


def polygon(points: Iterable[Sequence[float]], what: str = "polygon") -> Polygon:
    """A checked polygon: at least 3 finite (x, y) points, each in [0, 1]."""
    out: list[Point] = []
    for p in points:
        if len(p) != 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in p):
            raise ValueError(f"{what}: point {p!r} is not a finite (x, y) pair")
        x, y = float(p[0]), float(p[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"{what}: point ({x}, {y}) is outside [0, 1]; polygons are normalised to the frame"
            )
        out.append((x, y))
    if len(out) < 3:
        raise ValueError(f"{what}: needs at least 3 points, got {len(out)}")
    return tuple(out)


def points_in_polygon(points: npt.NDArray[np.floating], poly: Polygon) -> BoolArray:
    """For each (x, y) row of `points`, whether it lies inside `poly` or on its edge (even-odd rule)."""
    px = np.asarray(points, dtype=np.float64)[:, 0:1]
    py = np.asarray(points, dtype=np.float64)[:, 1:2]
    vertices = np.asarray(poly, dtype=np.float64)
    x1, y1 = vertices[:, 0], vertices[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    dx, dy = x2 - x1, y2 - y1
    # Ray casting to the right: an odd number of edges crossing the ray means inside.
    straddles = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (py - y1) * dx / dy
    inside = (np.count_nonzero(straddles & (px < x_cross), axis=1) % 2) == 1
    # On an edge: distance to the nearest point of a segment.
    seg_len2 = dx * dx + dy * dy
    t = np.clip(((px - x1) * dx + (py - y1) * dy) / np.where(seg_len2 > 0, seg_len2, 1.0), 0.0, 1.0)
    dist2 = (x1 + t * dx - px) ** 2 + (y1 + t * dy - py) ** 2
    on_edge = (dist2 <= _EDGE_TOLERANCE**2).any(axis=1)
    result: BoolArray = inside | on_edge
    return result


def ground_points(xyxy: npt.NDArray[np.float32], frame_w: int, frame_h: int) -> npt.NDArray[np.float64]:
    """The bottom-centre of each box, normalised to [0, 1].

    That is where a pile touches the ground: a tall pile leaning over a zone's border, or seen
    in perspective, belongs to the zone of the spot it stands on, not the one its top reaches into.
    """
    x = (xyxy[:, 0].astype(np.float64) + xyxy[:, 2]) / 2 / frame_w
    y = xyxy[:, 3].astype(np.float64) / frame_h
    return np.clip(np.stack([x, y], axis=1), 0.0, 1.0)


@dataclass(frozen=True)
class Zone:
    """A named area of one camera's frame; its name travels on the wire, so it is a checked id."""

    name: str
    polygon: Polygon = WHOLE_FRAME

    def __post_init__(self) -> None:
        check_id(self.name, "zone")
        object.__setattr__(self, "polygon", polygon(self.polygon, f"zone {self.name!r}"))


@dataclass(frozen=True)
class ZoneFilter:
    """Splits one frame's detections into the exposed garbage of each zone.

    A box counts when its class is an exposed-garbage class, its area is at least
    `min_box_area` (a fraction of the frame's area, to drop far-away specks), its ground point is
    not in any mask (spots to ignore, e.g. a sanctioned collection point), and then it belongs to
    every zone whose polygon holds its ground point.
    """

    zones: tuple[Zone, ...] = (Zone("all"),)
    masks: tuple[Polygon, ...] = ()
    min_box_area: float = 0.0
    exposed_classes: frozenset[str] = field(default=DEFAULT_EXPOSED_CLASSES)

    def __post_init__(self) -> None:
        names = [z.name for z in self.zones]
        if not names:
            raise ValueError("ZoneFilter needs at least one zone")
        if len(set(names)) != len(names):
            raise ValueError(f"zone names repeat: {names}")
        if not 0.0 <= self.min_box_area < 1.0:
            raise ValueError(f"min_box_area {self.min_box_area} is not a fraction of the frame in [0, 1)")
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "masks", tuple(polygon(m, f"mask {i}") for i, m in enumerate(self.masks)))
        object.__setattr__(self, "exposed_classes", frozenset(self.exposed_classes))

    @property
    def zone_names(self) -> tuple[str, ...]:
        return tuple(z.name for z in self.zones)

    def apply(self, detections: Detections, frame_w: int, frame_h: int) -> dict[str, Detections]:
        """Exposed garbage per zone name; every zone is in the result, empty when it is clean."""
        if frame_w <= 0 or frame_h <= 0:
            raise ValueError(f"frame size {frame_w}x{frame_h} is not positive")
        keep = detections.with_names(self.exposed_classes)
        keep &= box_area(detections.xyxy) >= self.min_box_area * frame_w * frame_h
        points = ground_points(detections.xyxy, frame_w, frame_h)
        for mask in self.masks:
            keep &= ~points_in_polygon(points, mask)
        return {
            zone.name: detections.filter(keep & points_in_polygon(points, zone.polygon))
            for zone in self.zones
        }
