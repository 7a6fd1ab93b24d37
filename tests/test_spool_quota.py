"""Over quota the spool drops the oldest clips, then snapshots, then whole events; each drop is counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import wire
from edge.evidence import EvidenceFile, build_event_message
from edge.spool import Spool

KEY = wire.DeviceKey.from_seed(b"\x09" * 32)
MODEL = wire.ModelRef(name="m", sha256="cd" * 32)
CLIP, SNAP = 20_000, 2_000


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_764_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def bundle(i: int, clip: int = CLIP) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    return build_event_message(
        KEY,
        event_id=f"0190f3a2b4c5d6{i:02d}",
        kind="confirmed",
        device_id="edge-01",
        site="s1",
        camera="cam-1",
        zone="z1",
        first_seen=1_764_000_000.0,
        at=1_764_000_010.0,
        clock_synced=True,
        frame_size=(640, 480),
        detections=[],
        model=MODEL,
        files=[
            ("clip", "clip.mp4", "video/mp4", bytes([i]) * clip),
            ("snapshot", "snap.jpg", "image/jpeg", bytes([100 + i]) * SNAP),
        ],
    )


def message_bytes() -> int:
    return len(bundle(0)[0].model_dump_json())


def states(spool: Spool, i: int, clip: int = CLIP) -> dict[str, str]:
    m = bundle(i, clip)[0]
    return {f.role: str(spool.file_state(f.sha256)) for f in m.manifest.files}


def test_oldest_clip_is_dropped_first_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    per_bundle = CLIP + SNAP + message_bytes()
    spool = Spool(tmp_path / "spool", quota_bytes=2 * per_bundle + CLIP // 2, clock=FakeClock())
    spool.put(*bundle(1))
    spool.put(*bundle(2))
    assert spool.stats().dropped == 0
    with caplog.at_level(logging.WARNING):
        spool.put(*bundle(3))
    assert states(spool, 1) == {"clip": "dropped", "snapshot": "pending"}
    assert states(spool, 2) == {"clip": "pending", "snapshot": "pending"}
    assert states(spool, 3) == {"clip": "pending", "snapshot": "pending"}
    stats = spool.stats()
    assert stats.dropped_files == 1 and stats.dropped == 1
    assert stats.used_bytes <= stats.quota_bytes
    assert any("dropped clip" in r.getMessage() for r in caplog.records)
    # The event itself is kept and will be sent, listing the dropped clip.
    first = next(b for b in spool.pending() if b.event_id.endswith("01"))
    assert [f.state for f in first.files] == ["dropped", "pending"]
    assert [f.ref.role for f in first.unsent_files] == ["snapshot"]
    assert len(first.message.manifest.files) == 2


def test_snapshots_go_after_all_clips_and_events_last(tmp_path: Path) -> None:
    per_bundle = CLIP + SNAP + message_bytes()
    spool = Spool(tmp_path / "spool", quota_bytes=3 * per_bundle, clock=FakeClock())
    for i in range(1, 4):
        spool.put(*bundle(i))
    # Shrink the quota: every clip must go before any snapshot, and snapshots before events.
    spool.quota_bytes = 3 * (SNAP + message_bytes()) - 1
    spool._enforce_quota()
    assert [states(spool, i) for i in (1, 2, 3)] == [
        {"clip": "dropped", "snapshot": "dropped"},
        {"clip": "dropped", "snapshot": "pending"},
        {"clip": "dropped", "snapshot": "pending"},
    ]
    assert len(spool.pending()) == 3
    spool.quota_bytes = 2 * message_bytes() - 1
    spool._enforce_quota()
    remaining = [b.event_id[-2:] for b in spool.pending()]
    assert remaining == ["03"]
    stats = spool.stats()
    assert stats.dropped_bundles == 2
    assert stats.dropped == stats.dropped_files + 2
    assert {p.name for p in (spool.path / "files").iterdir()} == set()


def test_a_bundle_bigger_than_the_quota_keeps_its_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", quota_bytes=SNAP + message_bytes() + 10, clock=FakeClock())
    assert spool.put(*bundle(1, clip=5 * CLIP))
    assert states(spool, 1, clip=5 * CLIP) == {"clip": "dropped", "snapshot": "pending"}
    assert len(spool.pending()) == 1
