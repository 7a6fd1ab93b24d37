"""`CameraExposure`: one `ExposureTracker` per zone of a camera, fed from `ZoneFilter.apply`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from edge.detect import Detections
from edge.events.exposure import ExposureConfig, ExposureEvent, ExposureTracker
from edge.events.occlusion import Occluded
from wire.ids import check_id, new_event_id

log = logging.getLogger(__name__)


class CameraExposure:
    def __init__(
        self,
        camera: str,
        zone_names: Iterable[str],
        config: ExposureConfig | None = None,
        *,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        check_id(camera, "camera")
        self.camera = camera
        self.trackers = {
            check_id(zone, "zone"): ExposureTracker(camera, zone, config, new_id=new_id)
            for zone in zone_names
        }
        if not self.trackers:
            raise ValueError(f"camera {camera!r} has no zones")

    def observe(
        self,
        t: float,
        per_zone: Mapping[str, Detections],
        frame_ok: bool = True,
        occluded: Occluded | None = None,
    ) -> list[ExposureEvent]:
        """One analysis of the whole frame; `per_zone` is what ZoneFilter.apply returned."""
        unknown = set(per_zone) - set(self.trackers)
        if unknown:
            log.warning("camera %s: detections for unknown zones %s ignored", self.camera, sorted(unknown))
        events: list[ExposureEvent] = []
        for zone, tracker in self.trackers.items():
            detections = per_zone.get(zone)
            if detections is None and frame_ok:
                # Missing is not clean: counting it as clean could clear a pile nobody looked at.
                log.warning(
                    "camera %s: no detections given for zone %s; analysis not counted", self.camera, zone
                )
            ok = frame_ok and detections is not None
            events += tracker.observe(t, detections or Detections.empty(), frame_ok=ok, occluded=occluded)
        return events
