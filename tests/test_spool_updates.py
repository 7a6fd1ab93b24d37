"""One event, several 'update' messages: each is its own spooled bundle, none refused as a duplicate."""

from __future__ import annotations

from pathlib import Path

import wire
from edge.evidence import build_event_message
from edge.spool import Spool

KEY = wire.DeviceKey.from_seed(bytes(32))
MODEL = wire.ModelRef(name="m", sha256="0" * 64)


def message(kind: str, at: float, snapshot: bytes) -> tuple[wire.EventMessage, list]:  # type: ignore[type-arg]
    msg, files = build_event_message(
        KEY, event_id="0123456789abcdef", kind=kind, device_id="box-1", site="s", camera="c", zone="all",  # type: ignore[arg-type]
        first_seen=1_700_000_000.0, at=at, clock_synced=True, frame_size=(64, 36), detections=[], model=MODEL,
        files=[("snapshot", "snapshot.jpg", "image/jpeg", snapshot)])
    return msg, [(f.ref, f.content) for f in files]


def test_two_updates_of_one_event_are_both_spooled_and_acked_separately(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.put(*message("confirmed", 1_700_000_060.0, b"\xff\xd8a"))
    assert spool.put(*message("update", 1_700_000_360.0, b"\xff\xd8b"))
    assert spool.put(*message("update", 1_700_000_660.0, b"\xff\xd8c"))
    assert not spool.put(*message("update", 1_700_000_660.0, b"\xff\xd8c"))  # the same message again
    pending = spool.pending()
    assert [b.message.manifest.kind for b in pending] == ["confirmed", "update", "update"]
    assert len({b.key for b in pending}) == 3
    spool.mark_event_acked(*pending[1].key)
    assert [b.message.manifest.at for b in spool.pending()][1:] == [pending[2].message.manifest.at]
    spool.close()
