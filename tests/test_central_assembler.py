"""File reassembly on a real SQLite file and real folders, without a broker."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.evidence_store import ContentStore
from central.ingest.assembler import CHECKPOINT_BYTES, FileAssembler, FileResult
from central.ingest.ranges import add_range, covers, gaps
from central.ingest.refusal import Refusal
from central.store import evidence_file, open_database
from wire.topics import Topic, TopicKind


def answered(result: FileResult | None) -> FileResult:
    """A central alone answers at once (None is a deferral, which only shared mode makes)."""
    assert result is not None
    return result

DEVICE, SITE, CAMERA = "box-1", "site-a", "cam-1"
EVENT_ID = "0190aabbccdd0011223344556677"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_assembler(root: Path, max_file_bytes: int = 1 << 20) -> FileAssembler:
    return FileAssembler(
        open_database(root / "gw.db"),
        ContentStore(root / "evidence"),
        ContentStore(root / "quarantine"),
        root / "incoming",
        max_file_bytes=max_file_bytes,
        clock=Clock(),
    )


def data_of(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def init_payload(data: bytes, **override: object) -> bytes:
    body = {
        "event_id": EVENT_ID,
        "role": "clip",
        "name": "clip.mp4",
        "media_type": "video/mp4",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **override,
    }
    return json.dumps(body).encode()


def t_init(sha: str) -> Topic:
    return Topic(TopicKind.FILE_INIT, DEVICE, SITE, CAMERA, sha)


def t_seg(sha: str, offset: int) -> Topic:
    return Topic(TopicKind.FILE_SEGMENT, DEVICE, SITE, CAMERA, sha, offset=offset)


def t_fin(sha: str, size: int) -> Topic:
    return Topic(TopicKind.FILE_FIN, DEVICE, SITE, CAMERA, sha, size=size)


def segments(data: bytes, size: int = 1000) -> list[tuple[int, bytes]]:
    return [(o, data[o : o + size]) for o in range(0, len(data), size)]


def test_out_of_order_and_duplicate_segments_make_the_exact_file(tmp_path: Path) -> None:
    a = make_assembler(tmp_path)
    data = data_of(7500)
    sha = hashlib.sha256(data).hexdigest()
    assert a.on_init(t_init(sha), init_payload(data)) is None
    segs = segments(data)
    order = segs[::-1] + segs[2:5]
    for off, chunk in order:
        assert a.on_segment(t_seg(sha, off), chunk) is None
    result = answered(a.on_fin(t_fin(sha, len(data))))
    assert (result.status, result.duplicate) == ("ok", False)
    assert a.evidence.path_for(sha).read_bytes() == data
    row = evidence_file(a.db, sha)
    assert row is not None and row["size"] == 7500 and row["role"] == "clip" and row["event_id"] == EVENT_ID
    assert not list((tmp_path / "incoming").rglob("*.part"))
    # Everything again, as after a lost ack: nothing changes, the answer is the same.
    assert a.on_init(t_init(sha), init_payload(data)) is not None
    assert a.on_segment(t_seg(sha, 0), segs[0][1]) is not None
    assert answered(a.on_fin(t_fin(sha, len(data)))).status == "ok"


def test_a_fin_before_the_last_segment_asks_for_the_gap_then_completes(tmp_path: Path) -> None:
    a = make_assembler(tmp_path)
    data = data_of(3000)
    sha = hashlib.sha256(data).hexdigest()
    a.on_init(t_init(sha), init_payload(data))
    a.on_segment(t_seg(sha, 0), data[:1000])
    a.on_segment(t_seg(sha, 2000), data[2000:])
    early = answered(a.on_fin(t_fin(sha, 3000)))
    assert early.status == "missing" and "1000-2000" in early.reason
    done = a.on_segment(t_seg(sha, 1000), data[1000:2000])
    assert done is not None and done.status == "ok"
    assert a.evidence.has(sha, 3000)


def test_a_segment_beyond_the_announced_size_is_refused_and_the_transfer_goes_on(tmp_path: Path) -> None:
    a = make_assembler(tmp_path)
    data = data_of(2000)
    sha = hashlib.sha256(data).hexdigest()
    a.on_init(t_init(sha), init_payload(data))
    with pytest.raises(Refusal) as err:
        a.on_segment(t_seg(sha, 1500), b"x" * 1000)
    assert err.value.reason == "segment_beyond_size"
    for off, chunk in segments(data):
        a.on_segment(t_seg(sha, off), chunk)
    assert answered(a.on_fin(t_fin(sha, 2000))).status == "ok"


def test_a_wrong_hash_quarantines_the_bytes_and_rejects_the_file(tmp_path: Path) -> None:
    a = make_assembler(tmp_path)
    data = data_of(2000)
    sha = hashlib.sha256(data).hexdigest()
    a.on_init(t_init(sha), init_payload(data))
    a.on_segment(t_seg(sha, 0), data[:1000])
    bad = b"\0" * 1000
    a.on_segment(t_seg(sha, 1000), bad)
    with pytest.raises(Refusal) as err:
        a.on_fin(t_fin(sha, 2000))
    refusal = err.value
    assert refusal.reason == "file_hash_mismatch" and refusal.ack == ("file", sha)
    actual = hashlib.sha256(data[:1000] + bad).hexdigest()
    assert refusal.saved_sha256 == actual
    assert a.quarantine.path_for(actual).read_bytes() == data[:1000] + bad
    assert not a.evidence.has(sha)
    assert list(a.db.query("SELECT * FROM transfers")) == []
    # The edge may send it again, correctly this time.
    a.on_init(t_init(sha), init_payload(data))
    for off, chunk in segments(data):
        a.on_segment(t_seg(sha, off), chunk)
    assert answered(a.on_fin(t_fin(sha, 2000))).status == "ok"


def test_a_new_assembler_on_the_same_folder_finishes_a_transfer_begun_before_a_restart(
    tmp_path: Path,
) -> None:
    data = data_of(5000)
    sha = hashlib.sha256(data).hexdigest()
    segs = segments(data)
    first = make_assembler(tmp_path)
    first.on_init(t_init(sha), init_payload(data))
    for off, chunk in segs[:3]:
        first.on_segment(t_seg(sha, off), chunk)
    first.checkpoint_all()  # a clean stop (MqttConsumer.stop)
    second = make_assembler(tmp_path)
    second.on_segment(t_seg(sha, segs[1][0]), segs[1][1])  # a redelivery of what was already written
    for off, chunk in segs[3:]:
        second.on_segment(t_seg(sha, off), chunk)
    assert answered(second.on_fin(t_fin(sha, 5000))).status == "ok"
    assert second.evidence.path_for(sha).read_bytes() == data


def test_after_a_crash_the_fin_asks_again_for_what_was_not_checkpointed(tmp_path: Path) -> None:
    """Segments are made durable at checkpoints, not one by one: nothing was promised for them."""
    data = data_of(5000)
    sha = hashlib.sha256(data).hexdigest()
    segs = segments(data)
    first = make_assembler(tmp_path)
    first.on_init(t_init(sha), init_payload(data))
    for off, chunk in segs[:3]:
        first.on_segment(t_seg(sha, off), chunk)
    # No clean shutdown: the old connection is simply abandoned, with the ranges in its memory.
    second = make_assembler(tmp_path)
    for off, chunk in segs[3:]:
        second.on_segment(t_seg(sha, off), chunk)
    missing = answered(second.on_fin(t_fin(sha, 5000)))
    assert missing.status == "missing" and missing.reason == "bytes 0-3000 not received"
    # The edge sends the file again; the last byte completes it (the fin was recorded).
    results = [second.on_segment(t_seg(sha, off), chunk) for off, chunk in segs]
    assert results[-1] is not None and results[-1].status == "ok"
    assert second.evidence.path_for(sha).read_bytes() == data


def test_ranges_are_committed_only_after_the_bytes_are_fsynced(tmp_path: Path) -> None:
    data = data_of(3 * CHECKPOINT_BYTES // 2)
    sha = hashlib.sha256(data).hexdigest()
    a = make_assembler(tmp_path, max_file_bytes=len(data))
    a.on_init(t_init(sha), init_payload(data))
    chunks = segments(data, 1 << 20)
    committed = []
    for off, chunk in chunks:
        a.on_segment(t_seg(sha, off), chunk)
        committed.append(json.loads(a.db.execute("SELECT ranges FROM transfers").fetchone()[0]))
    # Nothing until CHECKPOINT_BYTES were written, then all of them at once.
    per_checkpoint = CHECKPOINT_BYTES // (1 << 20)
    assert committed[: per_checkpoint - 1] == [[]] * (per_checkpoint - 1)
    assert committed[per_checkpoint - 1] == [[0, CHECKPOINT_BYTES]]
    assert answered(a.on_fin(t_fin(sha, len(data)))).status == "ok"
    assert a.evidence.path_for(sha).read_bytes() == data


def test_bad_inits_and_orphans(tmp_path: Path) -> None:
    a = make_assembler(tmp_path, max_file_bytes=1000)
    data = data_of(2000)
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(Refusal) as err:
        a.on_init(t_init(sha), init_payload(data))
    assert err.value.reason == "file_too_large" and err.value.ack == ("file", sha)
    with pytest.raises(Refusal) as err:
        a.on_init(t_init("ab" * 32), init_payload(data[:500]))
    assert err.value.reason == "init_mismatch"
    with pytest.raises(Refusal) as err:
        a.on_init(t_init(sha), b'{"size": ')
    assert err.value.reason == "invalid_init"
    with pytest.raises(Refusal) as err:
        a.on_segment(t_seg(sha, 0), data[:100])
    assert err.value.reason == "segment_without_init"
    orphan_fin = answered(a.on_fin(t_fin(sha, 2000)))
    assert orphan_fin.status == "missing"


def test_a_fin_with_another_size_rejects_the_file(tmp_path: Path) -> None:
    a = make_assembler(tmp_path)
    data = data_of(1500)
    sha = hashlib.sha256(data).hexdigest()
    a.on_init(t_init(sha), init_payload(data))
    a.on_segment(t_seg(sha, 0), data[:1000])
    with pytest.raises(Refusal) as err:
        a.on_fin(t_fin(sha, 1400))
    assert err.value.reason == "file_size_mismatch" and err.value.ack == ("file", sha)
    assert list(a.db.query("SELECT * FROM transfers")) == []


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), max_size=30))
def test_ranges_agree_with_a_set_of_bytes(pieces: list[tuple[int, int]]) -> None:
    size = 240
    ranges: list[tuple[int, int]] = []
    have: set[int] = set()
    for start, length in pieces:
        end = min(size, start + length)
        ranges = add_range(ranges, start, end)
        have |= set(range(start, end))
    # Disjoint, sorted, not touching, and exactly the bytes received.
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(ranges))
    assert {b for s, e in ranges for b in range(s, e)} == have
    assert {b for s, e in gaps(ranges, size) for b in range(s, e)} == set(range(size)) - have
    assert covers(ranges, size) == (have == set(range(size)))


def test_bytes_written_again_differently_are_caught_by_the_final_hash(tmp_path: Path) -> None:
    """The in-order hash must not vouch for bytes a later segment overwrote."""
    data = data_of(3000)
    sha = hashlib.sha256(data).hexdigest()
    a = make_assembler(tmp_path)
    a.on_init(t_init(sha), init_payload(data))
    segs = segments(data)
    a.on_segment(t_seg(sha, 0), segs[0][1])
    a.on_segment(t_seg(sha, 500), bytes(1000))  # over hashed bytes, with other ones
    for off, chunk in segs[1:]:
        a.on_segment(t_seg(sha, off), chunk)
    with pytest.raises(Refusal) as refused:
        a.on_fin(t_fin(sha, 3000))
    assert refused.value.reason == "file_hash_mismatch"
    assert not a.evidence.has(sha)
