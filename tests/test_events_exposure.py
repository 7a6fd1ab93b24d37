"""The exposed-garbage state machine on a fake clock, one analysis a second."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import numpy as np
import pytest

from edge.detect import Detections
from edge.events import ExposureConfig, ExposureEvent, ExposureTracker, occluded_by

NAMES = ("garbage", "garbage_bin", "overflow")
PILE = (100.0, 200.0, 300.0, 400.0)
OTHER_PILE = (600.0, 200.0, 700.0, 300.0)


def dets(*boxes: tuple[float, float, float, float], cls: int = 0) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.full(len(boxes), 0.8, np.float32),
        np.full(len(boxes), cls),
        NAMES,
    )


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Scene:
    """Drives one tracker with one analysis per `step` seconds and collects its events."""

    def __init__(self, config: ExposureConfig | None = None, step: float = 1.0) -> None:
        self.clock = FakeClock()
        self.step = step
        ids = (f"{i:016x}" for i in itertools.count(1))
        self.tracker = ExposureTracker("cam-1", "all", config, new_id=lambda: next(ids))
        self.events: list[ExposureEvent] = []

    def run(
        self,
        seconds: float,
        frame: Callable[[int], Detections | None],
        occluded: Callable[..., bool] | None = None,
    ) -> list[ExposureEvent]:
        """`frame(i)` gives the i-th analysis' detections, or None for a failed frame."""
        new: list[ExposureEvent] = []
        for i in range(round(seconds / self.step)):
            d = frame(i)
            new += self.tracker.observe(
                self.clock(),
                d if d is not None else Detections.empty(),
                frame_ok=d is not None,
                occluded=occluded,
            )
            self.clock.t += self.step
        self.events += new
        return new

    def kinds(self, events: Iterable[ExposureEvent] | None = None) -> list[str]:
        return [e.kind for e in (self.events if events is None else events)]


def pile(i: int) -> Detections:
    return dets(PILE)


def clean(i: int) -> Detections:
    return Detections.empty(NAMES)


def jitter(i: int) -> Detections:
    dx = (i % 3) * 4.0  # a detector box wobbles a few pixels
    return dets((PILE[0] + dx, PILE[1], PILE[2] + dx, PILE[3]))


def test_confirmed_after_confirm_seconds_at_60_percent() -> None:
    scene = Scene()
    start = scene.clock()
    events = scene.run(90, lambda i: dets(PILE) if i % 5 in (0, 1, 3) else clean(i))  # 3 of every 5
    assert scene.kinds(events) == ["confirmed"]
    event = events[0]
    assert 60 <= event.at - start <= 65
    assert event.first_seen == start and event.zone == "all" and event.camera == "cam-1"
    assert event.detections.names() == ["garbage"]
    np.testing.assert_allclose(event.detections.xyxy[0], PILE)
    assert scene.tracker.state == "ongoing" and scene.tracker.event_id == event.event_id


def test_steady_pile_confirms_at_confirm_seconds_and_smooths_jitter() -> None:
    scene = Scene()
    start = scene.clock()
    events = scene.run(100, jitter)
    assert scene.kinds(events) == ["confirmed"] and events[0].at - start == 60
    assert scene.tracker.state == "ongoing"
    assert abs(events[0].detections.xyxy[0, 0] - 104) < 4  # the moving average sits in the wobble


def test_not_confirmed_at_50_percent() -> None:
    scene = Scene()
    assert scene.run(600, lambda i: pile(i) if i % 2 == 0 else clean(i)) == []
    assert scene.tracker.state == "candidate"


def test_passer_by_for_4_seconds_does_not_confirm() -> None:
    scene = Scene()
    assert scene.run(600, lambda i: pile(i) if i < 4 else clean(i)) == []
    assert scene.tracker.state == "idle"  # the track is forgotten once the spot was clean long enough


def test_single_missed_analysis_or_dark_minute_does_not_clear() -> None:
    scene = Scene()
    scene.run(70, pile)
    scene.run(1, clean)  # one miss
    scene.run(60, pile)
    scene.run(100, clean)  # the street lights flicker: no detections for 100 s < clear_seconds
    scene.run(60, pile)
    assert scene.kinds() == ["confirmed"]
    assert scene.tracker.state == "ongoing"


def test_cleared_after_clear_seconds_exactly_once_with_same_event_id() -> None:
    scene = Scene()
    scene.run(70, pile)
    clean_from = scene.clock()
    scene.run(120, clean)
    assert scene.kinds() == ["confirmed"]  # 119 s of clean analyses are not yet 120
    events = scene.run(300, clean)
    assert scene.kinds(events) == ["cleared"]
    cleared = events[0]
    assert cleared.at == clean_from + 120
    assert cleared.event_id == scene.events[0].event_id
    assert cleared.first_seen == scene.events[0].first_seen
    np.testing.assert_allclose(cleared.detections.xyxy[0], PILE)
    assert scene.tracker.state == "idle" and scene.tracker.event_id is None


def test_failed_frames_are_not_clean() -> None:
    scene = Scene()
    scene.run(70, pile)
    assert scene.run(600, lambda i: None) == []  # ten minutes of decode failures
    assert (
        scene.run(301, lambda i: clean(i) if i % 2 else None) == []
    )  # every other frame fails, the last too
    assert scene.tracker.state == "ongoing"
    clean_from = scene.clock()
    events = scene.run(200, clean)
    assert scene.kinds(events) == ["cleared"] and events[0].at == clean_from + 120


def test_failed_frames_do_not_count_against_confirmation() -> None:
    scene = Scene()
    start = scene.clock()
    events = scene.run(90, lambda i: pile(i) if i % 2 else None)  # seen in every frame that decoded
    assert scene.kinds(events) == ["confirmed"] and events[0].at - start <= 62


def test_occluded_spot_is_not_clean() -> None:
    scene = Scene()
    scene.run(70, pile)
    van = Detections(
        np.array([[50, 150, 400, 450]], np.float32), np.array([0.9], np.float32), np.array([0]), ("car",)
    )
    assert scene.run(600, clean, occluded=occluded_by(van)) == []
    assert scene.tracker.state == "ongoing"
    # Our own model has no person/car classes: the default hook accepts and the pile clears.
    no_occluders = occluded_by(dets(OTHER_PILE))
    assert scene.kinds(scene.run(130, clean, occluded=no_occluders)) == ["cleared"]


def test_pile_returning_after_clear_is_a_new_event() -> None:
    scene = Scene()
    scene.run(70, pile)
    scene.run(130, clean)
    scene.run(70, pile)
    assert scene.kinds() == ["confirmed", "cleared", "confirmed"]
    first, cleared, again = scene.events
    assert first.event_id == cleared.event_id != again.event_id
    assert again.first_seen > cleared.at


def test_update_rate_limited_and_only_on_change() -> None:
    scene = Scene()
    confirmed = scene.run(61, pile)
    assert scene.kinds(confirmed) == ["confirmed"]
    t0 = confirmed[0].at
    # A second pile appears 10 s later: confirmed as a pile at +70 s, reported no sooner than +300 s.
    events = scene.run(400, lambda i: dets(PILE, OTHER_PILE))
    assert scene.kinds(events) == ["update"]
    update = events[0]
    assert update.at - t0 == 300
    assert (
        update.event_id == confirmed[0].event_id
        and len(update.detections) == 2
        and len(update.track_ids) == 2
    )
    # Nothing changes for 20 minutes: no updates.
    assert scene.run(1200, lambda i: dets(PILE, OTHER_PILE)) == []
    # The first pile grows (its box creeps outwards); the next update comes at most every 300 s.
    grown: list[ExposureEvent] = []
    for step in range(1, 13):
        box = (PILE[0] - 10 * step, PILE[1] - 10 * step, PILE[2] + 10 * step, PILE[3])
        grown += scene.run(100, lambda i, box=box: dets(box, OTHER_PILE))  # type: ignore[misc]
    assert scene.kinds(grown) and set(scene.kinds(grown)) == {"update"}
    times = [update.at] + [e.at for e in grown]
    assert all(b - a >= 300 for a, b in itertools.pairwise(times))


def test_several_piles_one_event_and_clear_only_when_all_gone() -> None:
    scene = Scene()
    scene.run(70, lambda i: dets(PILE, OTHER_PILE))
    assert scene.kinds() == ["confirmed"] and len(scene.events[0].detections) == 2
    scene.run(300, lambda i: dets(OTHER_PILE))  # one pile cleaned up, the other stays
    assert scene.kinds() == ["confirmed"]
    events = scene.run(130, clean)
    assert scene.kinds(events) == ["cleared"] and len(events[0].detections) == 1


def test_split_box_is_still_one_pile() -> None:
    scene = Scene()
    halves = dets(PILE, (100, 200, 200, 400))  # the detector also boxed the left half
    scene.run(400, lambda i: halves if i % 2 else dets(PILE))
    assert scene.kinds() == ["confirmed"]
    assert len(scene.tracker.tracks) == 1


def test_bad_times_are_ignored_and_counted() -> None:
    scene = Scene()
    scene.run(70, pile)
    assert scene.tracker.observe(float("nan"), Detections.empty()) == []
    assert scene.tracker.observe(5.0, Detections.empty()) == []  # earlier than the last analysis
    assert scene.tracker.rejected_analyses == 2
    assert scene.tracker.state == "ongoing"


def test_a_stall_neither_clears_nor_confirms_on_its_own() -> None:
    scene = Scene()
    scene.run(70, pile)
    scene.clock.t += 3600  # the process was paused for an hour
    assert scene.run(60, clean) == []  # clean time restarts after the gap (capped at max_gap_seconds)
    fresh = Scene()
    fresh.run(5, pile)
    fresh.clock.t += 3600
    assert fresh.run(2, pile) == []  # two sightings after a stall are not 60% of a minute


def test_noise_storm_is_bounded() -> None:
    scene = Scene(ExposureConfig(max_tracks=10))
    rng = np.random.default_rng(1)

    def noise(i: int) -> Detections:
        xy = rng.uniform(0, 1800, (30, 2)).astype(np.float32)
        return dets(*[(x, y, x + 20, y + 20) for x, y in xy])

    scene.run(20, noise)
    assert len(scene.tracker.tracks) <= 10 and scene.tracker.dropped_tracks > 0


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="confirm_ratio"):
        ExposureConfig(confirm_ratio=1.5)
    with pytest.raises(ValueError, match="clear_seconds"):
        ExposureConfig(clear_seconds=0)
