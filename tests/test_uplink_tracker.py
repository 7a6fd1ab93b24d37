"""The uplink's send/resend/ack-matching rules, on a fake clock and a real spool."""

from __future__ import annotations

from pathlib import Path

import pytest

import wire
from edge.evidence import build_event_message
from edge.spool import PendingBundle, Spool
from edge.uplink import DeliveryTracker
from wire.messages import EventKind

KEY = wire.DeviceKey.from_seed(b"\x05" * 32)
MODEL = wire.ModelRef(name="m", sha256="cd" * 32)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    ticks = iter(range(10**6))
    return Spool(tmp_path / "spool", clock=lambda: float(next(ticks)))


def put(spool: Spool, event: int, kind: EventKind = "confirmed") -> None:
    message, files = build_event_message(
        KEY,
        event_id=f"0190f3a2b4c5d6{event:02d}",
        kind=kind,
        device_id="edge-01",
        site="s1",
        camera="cam-1",
        zone="z1",
        first_seen=1.0,
        at=2.0,
        clock_synced=True,
        frame_size=(640, 480),
        detections=[],
        model=MODEL,
        files=[("snapshot", "s.jpg", "image/jpeg", f"{event}{kind}".encode())],
    )
    spool.put(message, files)


def names(bundles: list[PendingBundle]) -> list[str]:
    return [f"{b.event_id[-2:]}/{b.kind}" for b in bundles]


def test_new_bundles_go_oldest_first_within_the_window(spool: Spool) -> None:
    for i in range(5):
        put(spool, i)
    tracker = DeliveryTracker(ack_timeout=10, max_inflight_bundles=3, clock=FakeClock())
    due = tracker.due(spool.pending())
    assert names(due) == ["00/confirmed", "01/confirmed", "02/confirmed"]
    for b in due:
        tracker.sent(b.key)
    assert tracker.due(spool.pending()) == []
    spool.mark_event_acked(due[0].event_id, "confirmed")
    assert names(tracker.due(spool.pending())) == ["03/confirmed"]


def test_messages_of_one_event_go_one_at_a_time(spool: Spool) -> None:
    put(spool, 1, "confirmed")
    put(spool, 1, "update")
    put(spool, 2, "confirmed")
    tracker = DeliveryTracker(ack_timeout=10, clock=FakeClock())
    due = tracker.due(spool.pending())
    assert names(due) == ["01/confirmed", "02/confirmed"]
    for b in due:
        tracker.sent(b.key)
    spool.mark_event_acked(due[0].event_id, "confirmed")
    assert names(tracker.due(spool.pending())) == ["01/update"]


def test_resend_after_the_timeout_with_capped_backoff(spool: Spool) -> None:
    put(spool, 1)
    clock = FakeClock()
    tracker = DeliveryTracker(ack_timeout=10, max_resend_interval=35, clock=clock)
    resent_at = []
    for _ in range(400):
        if tracker.due(spool.pending()):
            tracker.sent(spool.pending()[0].key)
            resent_at.append(clock.t)
        clock.t += 1
    assert resent_at[:6] == [0, 10, 30, 65, 100, 135]


def test_interrupted_bundle_is_due_at_once(spool: Spool) -> None:
    put(spool, 1)
    clock = FakeClock()
    tracker = DeliveryTracker(ack_timeout=10, clock=clock)
    (b,) = tracker.due(spool.pending())
    tracker.interrupted(b.key)
    assert names(tracker.due(spool.pending())) == ["01/confirmed"]
    tracker.sent(b.key)
    clock.t = 5
    tracker.resend_now(b.key)  # the central said a file is missing
    assert names(tracker.due(spool.pending())) == ["01/confirmed"]


def test_reconnect_gives_sent_bundles_a_fresh_timeout(spool: Spool) -> None:
    put(spool, 1)
    clock = FakeClock()
    tracker = DeliveryTracker(ack_timeout=10, max_resend_interval=100, clock=clock)
    key = spool.pending()[0].key
    for t in (0, 10, 30):  # three rounds: the next would wait 40 s
        clock.t = t
        tracker.sent(key)
    clock.t = 31
    tracker.reconnected()
    clock.t = 40.9
    assert tracker.due(spool.pending()) == []
    clock.t = 41
    assert len(tracker.due(spool.pending())) == 1


def test_ack_matching(spool: Spool) -> None:
    put(spool, 1, "confirmed")
    put(spool, 1, "update")
    tracker = DeliveryTracker(ack_timeout=10, clock=FakeClock())
    pending = spool.pending()
    event_id = pending[0].event_id

    def ack(**kw: object) -> wire.Ack:
        return wire.Ack.model_validate({"ref_type": "event", "ref": event_id, "status": "ok", **kw})

    assert tracker.bundle_for(ack(kind="update"), pending) == pending[1]
    assert tracker.bundle_for(ack(kind="cleared"), pending) is None
    # Without a kind: the oldest, unless another message of the event is the one in flight.
    assert tracker.bundle_for(ack(), pending) == pending[0]
    tracker.sent(pending[1].key)
    assert tracker.bundle_for(ack(), pending) == pending[1]
    assert tracker.bundle_for(ack(ref="0190f3a2b4c5d699"), pending) is None


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        DeliveryTracker(ack_timeout=0)
    with pytest.raises(ValueError):
        DeliveryTracker(ack_timeout=10, max_resend_interval=5)
