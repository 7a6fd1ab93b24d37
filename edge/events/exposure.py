"""Exposed garbage over time, for one (camera, zone): candidate -> confirmed -> ongoing -> cleared.

- A pile is confirmed when its track has existed for `confirm_seconds` and was seen in at least
  `confirm_ratio` of the valid analyses of the last `confirm_seconds`: a passer-by or a one-off
  false detection never lasts that long.
- The zone's event then stays open while any confirmed pile remains. New piles and piles that
  grew are changes, reported as 'update' at most every `update_seconds`.
- A pile is gone when its spot was seen clean for `clear_seconds` over valid analyses. Frames that
  failed to decode, or where the spot was hidden (the `occluded` hook), count as neither seen nor
  clean, so a missed frame, a lighting change or a parked van neither clears nor re-opens anything.
  When the last pile is gone the event is 'cleared', with the same event id.

`t` is seconds on one clock the caller injects (time.monotonic in the daemon, a fake clock in
tests); events carry times on that clock. Only event ids read the wall clock, to sort by time.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edge.detect import Detections
from edge.events.occlusion import Occluded
from edge.events.tracks import PileTrack, match_tracks
from wire.ids import new_event_id

log = logging.getLogger(__name__)

EventKind = Literal["confirmed", "update", "cleared"]
TrackerState = Literal["idle", "candidate", "ongoing"]


@dataclass(frozen=True)
class ExposureConfig:
    confirm_seconds: float = 60.0
    confirm_ratio: float = 0.6
    match_iou: float = 0.3  # boxes of the same pile in two analyses overlap at least this much
    update_seconds: float = 300.0
    clear_seconds: float = 120.0
    growth_ratio: float = 1.3  # a pile whose box area grew by this factor since it was reported changed
    box_smoothing: float = 0.3  # weight of the newest box in the track's moving average
    # The longest gap between two analyses that counts towards clean time: after a stall (no
    # analyses at all) a pile must be seen clean again, not cleared by the stall alone.
    max_gap_seconds: float = 30.0
    # Fewest valid analyses in the confirm window: after a stall one sighting is not "60%".
    min_analyses: int = 3
    # Tracks beyond this (a detector spraying noise boxes) drop the stalest candidates.
    max_tracks: int = 64

    def __post_init__(self) -> None:
        for name in ("confirm_seconds", "update_seconds", "clear_seconds", "max_gap_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ExposureConfig.{name} must be a positive number of seconds, got {value!r}")
        for name in ("confirm_ratio", "match_iou", "box_smoothing"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"ExposureConfig.{name} must be in (0, 1], got {value!r}")
        if self.growth_ratio < 1.0 or self.min_analyses < 1 or self.max_tracks < 1:
            raise ValueError("ExposureConfig: growth_ratio >= 1, min_analyses >= 1 and max_tracks >= 1")


@dataclass(frozen=True, eq=False)
class ExposureEvent:
    """One step of a zone's event; `event_id` is the same for its confirmed, updates and cleared."""

    kind: EventKind
    event_id: str
    camera: str
    zone: str
    first_seen: float
    at: float
    detections: Detections  # the piles' current (smoothed) boxes; for 'cleared', the piles just gone
    track_ids: tuple[int, ...]


@dataclass
class _OpenEvent:
    event_id: str
    first_seen: float
    last_report: float
    changed: bool = False


class ExposureTracker:
    """The exposed-garbage state machine of one camera zone; feed it every analysis, in time order."""

    def __init__(
        self,
        camera: str,
        zone: str,
        config: ExposureConfig | None = None,
        *,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.camera = camera
        self.zone = zone
        self.config = config or ExposureConfig()
        self._new_id = new_id
        self._tracks: list[PileTrack] = []
        self._analyses: deque[float] = deque()  # times of the valid analyses in the confirm window
        self._last_t: float | None = None
        self._last_valid_t: float | None = None
        self._next_track_id = 1
        self._event: _OpenEvent | None = None
        self._class_names: tuple[str, ...] = ()
        self.rejected_analyses = 0  # bad times: not finite, or earlier than the previous one
        self.dropped_tracks = 0

    @property
    def state(self) -> TrackerState:
        if self._event is not None:
            return "ongoing"
        return "candidate" if self._tracks else "idle"

    @property
    def event_id(self) -> str | None:
        return self._event.event_id if self._event else None

    @property
    def tracks(self) -> tuple[PileTrack, ...]:
        return tuple(self._tracks)

    def observe(
        self, t: float, detections: Detections, frame_ok: bool = True, occluded: Occluded | None = None
    ) -> list[ExposureEvent]:
        """One analysis of the zone at time `t`: its exposed-garbage detections, or frame_ok=False
        when there was no usable frame. Returns the events this analysis caused (usually none)."""
        if not math.isfinite(t) or (self._last_t is not None and t < self._last_t):
            self.rejected_analyses += 1
            log.warning(
                "%s/%s: analysis at t=%r ignored: before the previous one (%r) or not finite",
                self.camera,
                self.zone,
                t,
                self._last_t,
            )
            return []
        self._last_t = t
        if not frame_ok:
            for track in self._tracks:
                track.clean_chain = False  # the time across a failed frame is not clean time
            self._last_valid_t = None
            return []
        if detections.class_names:
            self._class_names = detections.class_names
        dt = None if self._last_valid_t is None else min(t - self._last_valid_t, self.config.max_gap_seconds)
        self._last_valid_t = t
        self._analyses.append(t)
        window_start = t - self.config.confirm_seconds
        while self._analyses[0] < window_start:
            self._analyses.popleft()

        self._follow(t, dt, detections, occluded)
        newly_confirmed = self._confirm(t, window_start)
        gone = [tr for tr in self._tracks if tr.clean_for >= self.config.clear_seconds]
        self._tracks = [tr for tr in self._tracks if tr.clean_for < self.config.clear_seconds]
        return self._events(t, newly_confirmed, [tr for tr in gone if tr.confirmed])

    def _follow(self, t: float, dt: float | None, detections: Detections, occluded: Occluded | None) -> None:
        cfg = self.config
        pairs, fresh = match_tracks(self._tracks, detections.xyxy, cfg.match_iou)
        seen = set()
        for ti, bi in pairs:
            self._tracks[ti].hit(
                t,
                detections.xyxy[bi],
                float(detections.confidence[bi]),
                int(detections.class_id[bi]),
                cfg.box_smoothing,
            )
            seen.add(ti)
        for ti, track in enumerate(self._tracks):
            if ti in seen:
                continue
            if occluded is not None and occluded(track.as_box):
                track.clean_chain = False  # hidden, not clean
            else:
                track.seen_clean(dt)
        for bi in fresh:
            box = detections.xyxy[bi].astype(np.float64)
            track = PileTrack(
                self._next_track_id,
                box,
                float(detections.confidence[bi]),
                int(detections.class_id[bi]),
                first_seen=t,
                last_seen=t,
            )
            track.hits.append(t)
            self._next_track_id += 1
            self._tracks.append(track)
        if len(self._tracks) > cfg.max_tracks:
            self._drop_stalest(len(self._tracks) - cfg.max_tracks)

    def _drop_stalest(self, excess: int) -> None:
        candidates = sorted((tr for tr in self._tracks if not tr.confirmed), key=lambda tr: tr.last_seen)
        drop = {id(tr) for tr in candidates[:excess]}
        self._tracks = [tr for tr in self._tracks if id(tr) not in drop]
        self.dropped_tracks += len(drop)
        log.warning(
            "%s/%s: more than %d piles tracked; dropped the %d stalest candidates",
            self.camera,
            self.zone,
            self.config.max_tracks,
            len(drop),
        )

    def _confirm(self, t: float, window_start: float) -> list[PileTrack]:
        cfg = self.config
        analyses = len(self._analyses)
        newly = []
        for track in self._tracks:
            track.forget_before(window_start)
            if track.confirmed or t - track.first_seen < cfg.confirm_seconds or analyses < cfg.min_analyses:
                continue
            if len(track.hits) / analyses >= cfg.confirm_ratio:
                track.confirmed = True
                newly.append(track)
        return newly

    def _events(
        self, t: float, newly_confirmed: list[PileTrack], gone: list[PileTrack]
    ) -> list[ExposureEvent]:
        confirmed = [tr for tr in self._tracks if tr.confirmed]
        if self._event is None:
            if not newly_confirmed:
                return []
            self._event = _OpenEvent(self._new_id(), min(tr.first_seen for tr in confirmed), last_report=t)
            return [self._report("confirmed", t, confirmed)]
        if not confirmed:
            event = self._report("cleared", t, gone)
            self._event = None
            return [event]
        grew = any(
            tr.reported_area > 0 and tr.area >= tr.reported_area * self.config.growth_ratio
            for tr in confirmed
        )
        self._event.changed |= bool(newly_confirmed) or grew
        if self._event.changed and t - self._event.last_report >= self.config.update_seconds:
            self._event.last_report = t
            self._event.changed = False
            return [self._report("update", t, confirmed)]
        return []

    def _report(self, kind: EventKind, t: float, tracks: list[PileTrack]) -> ExposureEvent:
        assert self._event is not None
        for track in tracks:
            track.reported_area = track.area
        detections = Detections(
            xyxy=np.array([tr.box for tr in tracks], dtype=np.float32).reshape(-1, 4),
            confidence=np.array([tr.confidence for tr in tracks], dtype=np.float32),
            class_id=np.array([tr.class_id for tr in tracks], dtype=np.int64),
            class_names=self._class_names,
        )
        log.info(
            "%s/%s: exposed garbage %s, event %s, %d pile(s)",
            self.camera,
            self.zone,
            kind,
            self._event.event_id,
            len(tracks),
        )
        return ExposureEvent(
            kind=kind,
            event_id=self._event.event_id,
            camera=self.camera,
            zone=self.zone,
            first_seen=self._event.first_seen,
            at=t,
            detections=detections,
            track_ids=tuple(tr.track_id for tr in tracks),
        )
