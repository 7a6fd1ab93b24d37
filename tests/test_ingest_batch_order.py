"""A batch's events are handled after its other messages; its PUBACKs still go out in arrival order."""

from __future__ import annotations

from central.ingest.consumer import _event_last, _in_arrival_order
from wire.topics import TopicKind, event_topic, file_topic, status_topic

SHA = "ab" * 32


def _message(mid: int, topic: str) -> tuple[int, int, int, str, bytes]:
    return (0, mid, 1, topic, b"")


def test_events_go_last_and_each_kind_keeps_its_order() -> None:
    batch = [
        (_message(1, file_topic(TopicKind.FILE_FIN, "box-1", "s", "cam-1", SHA, size=10)), None),
        (_message(2, event_topic("box-1", "s", "cam-1")), None),  # its files' fsyncs are still running
        (_message(3, file_topic(TopicKind.FILE_INIT, "box-2", "s", "cam-1", SHA)), None),
        (_message(4, event_topic("box-2", "s", "cam-1")), None),
        (_message(5, status_topic("box-1")), None),
        (_message(6, file_topic(TopicKind.FILE_SEGMENT, "box-2", "s", "cam-1", SHA, offset=0)), None),
    ]
    handled = [message for message, _ in sorted(batch, key=_event_last)]
    assert [m[1] for m in handled] == [1, 3, 5, 6, 2, 4]
    # The broker hears the PUBACKs in the order it sent the messages (MQTT 5, 4.6).
    assert [m[1] for m in _in_arrival_order(handled, batch)] == [1, 2, 3, 4, 5, 6]


def test_a_message_handled_later_or_deferred_keeps_its_place_among_the_acked() -> None:
    batch = [(_message(mid, event_topic("box-1", "s", "cam-1")), None) for mid in (7, 8, 9)]
    handled = [batch[2][0], batch[0][0]]  # 8 was deferred: it gets no PUBACK now
    assert [m[1] for m in _in_arrival_order(handled, batch)] == [7, 9]
