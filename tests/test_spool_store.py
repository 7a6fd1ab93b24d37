from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import wire
from edge.evidence import EvidenceFile, build_event_message
from edge.spool import Spool, write_durably
from wire.messages import EventKind

KEY = wire.DeviceKey.from_seed(b"\x07" * 32)
MODEL = wire.ModelRef(name="m", sha256="cd" * 32)


class FakeClock:
    def __init__(self, t: float = 1_764_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def bundle(
    event_id: str = "0190f3a2b4c5d6e7",
    kind: EventKind = "confirmed",
    clip: bytes | Path | None = b"C" * 5000,
    snap: bytes = b"S" * 300,
) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    files: list[Any] = []
    if clip is not None:
        files.append(("clip", "clip.mp4", "video/mp4", clip))
    files.append(("snapshot", "snap.jpg", "image/jpeg", snap))
    return build_event_message(
        KEY,
        event_id=event_id,
        kind=kind,
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
        files=files,
    )


def blobs(spool: Spool) -> set[str]:
    return {p.name for p in (spool.path / "files").iterdir()}


def test_put_then_pending_lists_the_bundle_and_its_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", clock=FakeClock())
    message, files = bundle()
    assert spool.put(message, files)
    (pending,) = spool.pending()
    assert pending.key == ("0190f3a2b4c5d6e7", "confirmed")
    assert (
        pending.message == message and wire.EventMessage.model_validate_json(pending.message_json) == message
    )
    assert [f.ref for f in pending.unsent_files] == message.manifest.files
    for f in files:
        path = spool.file_path(f.ref.sha256)
        assert path is not None and path.read_bytes() == f.content
    stats = spool.stats()
    assert (stats.pending_bundles, stats.pending_files) == (1, 2)
    assert stats.used_bytes == 5300 + len(message.model_dump_json())


def test_put_is_idempotent(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    assert spool.put(message, files)
    assert not spool.put(message, files)
    assert len(spool.pending()) == 1


def test_put_copies_a_file_given_by_path(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(bytes(range(256)) * 100)
    spool = Spool(tmp_path / "spool")
    message, files = bundle(clip=src)
    spool.put(message, files)
    sha = message.manifest.files[0].sha256
    path = spool.file_path(sha)
    assert path is not None and path.read_bytes() == src.read_bytes() and path != src


def test_content_that_does_not_match_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    tampered = [files[0], EvidenceFile(files[1].ref, b"not the snapshot")]
    with pytest.raises(ValueError, match="sha256"):
        spool.put(message, tampered)
    with pytest.raises(ValueError, match="no content"):
        spool.put(message, files[:1])
    _, other_files = bundle(event_id="0190f3a2b4c5d6ff", snap=b"other")
    with pytest.raises(ValueError, match="not in the manifest"):
        spool.put(message, [*files, other_files[1]])
    assert spool.pending() == []
    assert not any(p.name.endswith(".tmp") for p in (spool.path / "files").iterdir())


def test_file_ack_deletes_its_bytes_and_event_ack_finishes_the_bundle(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    clip_sha = files[0].ref.sha256
    assert spool.mark_file_acked(clip_sha)
    assert not spool.mark_file_acked(clip_sha)  # a duplicate ack changes nothing
    assert spool.file_path(clip_sha) is None and clip_sha not in blobs(spool)
    (pending,) = spool.pending()
    assert [f.sha256 for f in pending.unsent_files] == [files[1].ref.sha256]
    assert spool.mark_event_acked(message.manifest.event_id, "confirmed")
    assert spool.pending() == [] and blobs(spool) == set()
    assert spool.file_state(files[1].ref.sha256) == "acked"
    assert spool.bundle_state(message.manifest.event_id, "confirmed") == "acked"
    assert not spool.mark_event_acked(message.manifest.event_id, "confirmed")


def test_rejected_bundle_stops_being_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    assert spool.mark_rejected(message.manifest.event_id, "confirmed", "unknown camera")
    assert spool.pending() == [] and blobs(spool) == set()
    assert spool.stats().rejected_bundles == 1


def test_a_file_shared_by_two_bundles_stays_while_one_needs_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    m1, f1 = bundle(event_id="0190f3a2b4c5d601")
    m2, f2 = bundle(event_id="0190f3a2b4c5d602", clip=None)  # the same snapshot bytes
    spool.put(m1, f1)
    spool.put(m2, f2)
    snap = f1[1].ref.sha256
    # Rejecting event 1 must not take the snapshot event 2 still needs.
    spool.mark_rejected("0190f3a2b4c5d601", "confirmed", "test")
    assert spool.file_state(snap) == "pending" and snap in blobs(spool)
    # An event ack says the central holds all its files (known by sha256, like file acks).
    spool.mark_event_acked("0190f3a2b4c5d602", "confirmed")
    assert spool.file_state(snap) == "acked"
    assert blobs(spool) == set()


def test_reopening_keeps_pending_bundles(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    spool.close()
    again = Spool(tmp_path / "spool")
    (pending,) = again.pending()
    assert pending.message == message
    assert all(again.file_path(f.ref.sha256) is not None for f in files)


def test_recovery_after_a_crash(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    spool.close()
    files_dir = tmp_path / "spool" / "files"
    # A crash while putting another bundle: its file is durable but its row never committed,
    # and a temporary file is left half-written.
    orphan = hashlib.sha256(b"orphan").hexdigest()
    write_durably(files_dir / orphan, b"orphan")
    (files_dir / f".{orphan}.123.456.tmp").write_bytes(b"half")
    # And a spooled file lost from the disk.
    (files_dir / files[1].ref.sha256).unlink()
    spool = Spool(tmp_path / "spool")
    assert blobs(spool) == {files[0].ref.sha256}
    (pending,) = spool.pending()
    assert [f.state for f in pending.files] == ["pending", "dropped"]
    assert spool.stats().dropped_files == 1


def test_attempts_are_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    spool.note_attempt(message.manifest.event_id, "confirmed")
    spool.note_attempt(message.manifest.event_id, "confirmed")
    assert spool.pending()[0].attempts == 2


def test_pending_is_oldest_first_and_can_be_limited(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", clock=FakeClock())
    for i in range(5):
        m, f = bundle(event_id=f"0190f3a2b4c5d6{i:02d}", snap=bytes([i]) * 10)
        spool.put(m, f)
    assert [b.event_id for b in spool.pending()] == [f"0190f3a2b4c5d6{i:02d}" for i in range(5)]
    assert len(spool.pending(limit=2)) == 2


def test_purge_forgets_finished_bundles(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = Spool(tmp_path / "spool", clock=clock)
    m, f = bundle()
    spool.put(m, f)
    spool.mark_event_acked(m.manifest.event_id, "confirmed")
    assert spool.purge_finished(older_than=clock.t + 10) == 1
    assert spool.bundle_state(m.manifest.event_id, "confirmed") is None
    assert spool.file_state(f[0].ref.sha256) is None
    # Once forgotten, the same bundle can be spooled again.
    assert spool.put(m, f)


def test_file_path_refuses_a_non_sha(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    with pytest.raises(wire.WireError):
        spool._blob("../../etc/passwd")
    assert spool.file_path("../../etc/passwd") is None


def test_a_damaged_row_is_set_aside_without_blocking_the_others(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", clock=FakeClock())
    m1, f1 = bundle(event_id="0190f3a2b4c5d601")
    m2, f2 = bundle(event_id="0190f3a2b4c5d602", snap=b"two")
    spool.put(m1, f1)
    spool.put(m2, f2)
    with spool._tx() as db:
        db.execute("UPDATE bundles SET message = '{broken' WHERE event_id = '0190f3a2b4c5d601'")
    assert [b.event_id for b in spool.pending()] == ["0190f3a2b4c5d602"]
    assert spool.bundle_state("0190f3a2b4c5d601", "confirmed") == "rejected"
    assert spool.stats().rejected_bundles == 1


def test_a_lost_file_is_recorded_as_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    message, files = bundle()
    spool.put(message, files)
    assert spool.mark_file_lost(files[0].ref.sha256, "unreadable: I/O error")
    assert spool.file_state(files[0].ref.sha256) == "dropped" and spool.file_path(files[0].ref.sha256) is None
    assert [f.ref.role for f in spool.pending()[0].unsent_files] == ["snapshot"]
