"""One camera after ingest: detections -> zones -> exposure events -> evidence bundle -> spool.

Evidence of a confirmed event waits for its post-roll: the clip covers
[event time - preroll, event time + postroll] and is cut by remuxing the ring buffer's packets
once the post-roll has arrived. A camera's bundles are spooled in the order their events
happened, so a 'cleared' never overtakes its 'confirmed'.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import wire
from edge.config import CameraConfig, EdgeConfig
from edge.detect import Detections
from edge.events import Box, CameraExposure, ExposureEvent, Occluded, occluded_by
from edge.events.spot_view import SpotReference
from edge.evidence import (
    ClipError,
    PacketRingBuffer,
    StreamTemplate,
    build_event_message,
    clock_synchronised,
    detection_records,
    encode_jpeg,
    encode_jpeg_with_boxes,
    write_clip,
)
from edge.ingest import AnalysisFrame
from edge.spool import Spool

log = logging.getLogger(__name__)


@dataclass
class _PendingBundle:
    event: ExposureEvent
    at_wall: float
    first_seen_wall: float
    frame_size: tuple[int, int]
    files: list[tuple[str, str, str, bytes | Path]]
    clip_until: float | None  # wall time when the post-roll is complete; None: no clip
    created: float = field(default_factory=time.time)


def _either(first: Occluded, second: Occluded) -> Occluded:
    return lambda box: first(box) or second(box)


class CameraPipeline:
    """Turns a camera's analysed frames into spooled, signed evidence bundles."""

    def __init__(self, camera: CameraConfig, config: EdgeConfig, key: wire.DeviceKey, spool: Spool,
                 model: wire.ModelRef, ring: PacketRingBuffer, on_spooled: object = None) -> None:
        self.camera, self.config, self.key, self.spool, self.model, self.ring = (
            camera, config, key, spool, model, ring)
        self.zones = camera.zone_filter()
        self.exposure = CameraExposure(camera.id, [z.name for z in camera.zones], config.exposure.build())
        self.spots = SpotReference()  # tells a spot seen clean from one merely hidden (edge/events/spot_view.py)
        self._template: StreamTemplate | None = None
        self._queue: deque[_PendingBundle] = deque()
        self._lock = threading.Lock()
        self._on_spooled = on_spooled
        self.events = {"confirmed": 0, "update": 0, "cleared": 0, "spooled": 0, "clip_failures": 0}

    def set_template(self, template: StreamTemplate) -> None:
        self._template = template

    def on_detections(self, frame: AnalysisFrame, detections: Detections) -> list[ExposureEvent]:
        """One analysis result; returns the events it caused (each also queued as a bundle)."""
        w, h = frame.size
        per_zone = self.zones.apply(detections, w, h)
        hidden, small = self.spots.hidden_hook(frame.image, frame_width=w)
        events = self.exposure.observe(frame.mono, per_zone, occluded=_either(occluded_by(detections), hidden))
        busy: list[Box] = [(float(x1), float(y1), float(x2), float(y2)) for x1, y1, x2, y2 in detections.xyxy]
        busy += [track.as_box for tracker in self.exposure.trackers.values() for track in tracker.tracks]
        self.spots.learn(small, busy)
        for event in events:
            self.events[event.kind] += 1
            self._queue_bundle(frame, event)
            log.info("camera %s zone %s: %s event %s (%d boxes)", self.camera.id, event.zone, event.kind,
                     event.event_id, len(event.detections))
        return events

    def _queue_bundle(self, frame: AnalysisFrame, event: ExposureEvent) -> None:
        to_wall = frame.wall - frame.mono  # the events' monotonic clock -> wall clock
        quality = self.config.evidence.jpeg_quality
        image = np.ascontiguousarray(frame.full_image())
        files: list[tuple[str, str, str, bytes | Path]] = []
        if event.kind == "cleared":
            files.append(("after_snapshot", "after.jpg", "image/jpeg", encode_jpeg(image, quality)))
        else:
            files.append(("snapshot", "snapshot.jpg", "image/jpeg", encode_jpeg(image, quality)))
            files.append(("snapshot_boxes", "snapshot_boxes.jpg", "image/jpeg",
                          encode_jpeg_with_boxes(image, event.detections, quality)))
        at_wall = event.at + to_wall
        clip_until = at_wall + self.config.evidence.postroll_seconds if event.kind == "confirmed" else None
        with self._lock:
            self._queue.append(_PendingBundle(event, at_wall, event.first_seen + to_wall,
                                              (image.shape[1], image.shape[0]), files, clip_until))

    def tick(self, now_wall: float | None = None) -> int:
        """Spool every bundle whose evidence is complete, in event order; returns how many."""
        now = time.time() if now_wall is None else now_wall
        done = 0
        while True:
            with self._lock:
                if not self._queue:
                    return done
                head = self._queue[0]
                # Wait for the post-roll, but not forever: a camera that went dark still reports.
                waiting = head.clip_until is not None and now < head.clip_until
                stale = head.clip_until is not None and now > head.clip_until + 30.0
                if waiting and not stale:
                    return done
                self._queue.popleft()
            self._spool(head)
            done += 1

    def _clip(self, pending: _PendingBundle, workdir: Path) -> Path | None:
        assert pending.clip_until is not None
        template = self._template
        start = pending.at_wall - self.config.evidence.preroll_seconds
        packets = self.ring.packets_between(start, pending.clip_until)
        if template is None or not packets:
            log.warning("camera %s: no packets buffered for event %s: bundle sent without a clip",
                        self.camera.id, pending.event.event_id)
            self.events["clip_failures"] += 1
            return None
        try:
            return write_clip(packets, template, workdir / "clip.mp4")
        except ClipError as exc:
            log.error("camera %s: clip for event %s failed: %s", self.camera.id, pending.event.event_id, exc)
            self.events["clip_failures"] += 1
            return None

    def _spool(self, pending: _PendingBundle) -> None:
        event = pending.event
        with tempfile.TemporaryDirectory(prefix="gw-clip-") as tmp:
            files = list(pending.files)
            if pending.clip_until is not None:
                clip = self._clip(pending, Path(tmp))
                if clip is not None:
                    files.insert(0, ("clip", "clip.mp4", "video/mp4", clip.read_bytes()))
            message, evidence = build_event_message(
                self.key, event_id=event.event_id, kind=event.kind, device_id=self.config.device_id,
                site=self.config.site, camera=self.camera.id, zone=event.zone,
                first_seen=pending.first_seen_wall, at=pending.at_wall, clock_synced=clock_synchronised(),
                frame_size=pending.frame_size,
                detections=detection_records(event.detections, pending.frame_size),
                model=self.model, files=files,  # type: ignore[arg-type]
            )
            self.spool.put(message, [(f.ref, f.content) for f in evidence])
        self.events["spooled"] += 1
        if callable(self._on_spooled):
            self._on_spooled()
