"""The hash-chained audit trail and `garbagewatch central verify-audit`, on a real SQLite file.

Tamper tests edit the database the way an intruder with file access would (sqlite3, no app
code) and check that each kind of tampering is found and named.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from central.api.context import ensure_api_schema
from central.audit import (
    CHECKPOINT_FILE,
    GENESIS_SHA256,
    AuditTrail,
    CheckpointPublisher,
    chain_head,
    iter_rows,
    row_sha256,
)
from central.cli import main as central_main
from central.store.database import open_database

NOW = 1_800_000_000.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "central"


@pytest.fixture
def config_file(tmp_path: Path, data_dir: Path) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text(f"data_dir: {data_dir}\n")
    return path


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    d = open_database(data_dir / "garbagewatch.db")
    ensure_api_schema(d)
    yield d
    d.close()


def _fill(db: Database, n: int, start: int = 0) -> None:
    trail = AuditTrail(db, clock=lambda: NOW)
    for i in range(start, start + n):
        trail(
            "user:alice",
            "order.dispatch",
            f"order:WO-20270115-{i:06d}",
            f"team {i % 3}",
            {"from": "registered", "i": i},
        )


def _checkpoint(data_dir: Path) -> None:
    """Issue one checkpoint the way the running central does (database row + export file)."""
    pub = CheckpointPublisher(db_path=data_dir / "garbagewatch.db", data_dir=data_dir, broker=None)
    assert pub.checkpoint_now() is not None


def _sql(data_dir: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(data_dir / "garbagewatch.db")
    with conn:
        conn.execute(sql, params)
    conn.close()


def _verify(config_file: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = central_main(["verify-audit", "--config", str(config_file), *extra])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_each_row_links_to_the_previous_and_hashes_its_own_content(db: Database) -> None:
    _fill(db, 5)
    rows = list(iter_rows(db))
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_sha256 == GENESIS_SHA256
    for before, row in itertools.pairwise(rows):
        assert row.prev_sha256 == before.sha256
    r = rows[2]
    assert r.sha256 == row_sha256(
        seq=r.seq,
        at=r.at,
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        reason=r.reason,
        detail=r.detail,
        prev_sha256=r.prev_sha256,
    )
    assert r.detail == '{"from":"registered","i":2}' and r.at == "2027-01-15T08:00:00.000Z"
    assert chain_head(db) == (5, rows[-1].sha256)


def test_a_row_written_inside_a_transaction_rolls_back_with_it(db: Database) -> None:
    trail = AuditTrail(db)
    with pytest.raises(RuntimeError), db.atomic():
        trail("user:alice", "order.close", "order:x", "", None)
        raise RuntimeError("the state change failed")
    assert chain_head(db) == (0, GENESIS_SHA256)
    with db.atomic():
        trail("user:alice", "order.close", "order:x", "", None)
    assert chain_head(db)[0] == 1


def test_writers_on_several_connections_keep_one_unbroken_chain(db: Database, data_dir: Path) -> None:
    def writer(k: int) -> None:
        conn = open_database(data_dir / "garbagewatch.db")
        trail = AuditTrail(conn)
        for i in range(25):
            trail(f"system:w{k}", "notification.sent", f"order:{k}-{i}", "", {"i": i})
        conn.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = list(iter_rows(db))
    assert [r.seq for r in rows] == list(range(1, 101))
    assert all(b.prev_sha256 == a.sha256 for a, b in itertools.pairwise(rows))


def test_a_batch_records_each_entrys_own_detail_whether_objects_are_shared_or_made_on_the_fly(
    db: Database,
) -> None:
    trail = AuditTrail(db, clock=lambda: NOW)
    shared = {"steps": [{"kind": "overdue", "level": 1}], "level": 1}
    trail.append_many([("system:escalation", "order.escalate", f"order:{i}", "", shared) for i in range(3)])
    # A generator's dicts may be freed as it goes and their memory reused: each still counts alone.
    trail.append_many(("system:x", "order.note", f"order:{i}", "", {"i": i}) for i in range(50))
    rows = list(iter_rows(db))
    assert [r.detail for r in rows[:3]] == ['{"level":1,"steps":[{"kind":"overdue","level":1}]}'] * 3
    assert [r.detail for r in rows[3:]] == [f'{{"i":{i}}}' for i in range(50)]


def test_detail_that_is_not_json_is_kept_as_text_not_lost(db: Database) -> None:
    AuditTrail(db)("system:x", "odd", "s", "", {"value": float("nan"), "b": b"\x00"})
    AuditTrail(db)("system:x", "odd", "s", "lone \ud800 surrogate", {"k": "\udc00"})
    first, second = iter_rows(db)
    assert "unserialisable" in first.detail and "nan" in first.detail
    assert second.reason == "lone \\ud800 surrogate" and "udc00" in second.detail


def test_overlong_fields_are_clipped_and_other_text_kept_as_it_is(db: Database) -> None:
    trail = AuditTrail(db)
    trail.append("user:李", "order.note", "order:1", "a" * 5000)
    trail.append("user:李", "order.note", "order:1", "垃圾" * 2500)
    trail.append(42, "order.note", "order:1", "暴露垃圾 at 中山路")  # type: ignore[arg-type]  # stored as its str
    long_ascii, long_chinese, short = iter_rows(db)
    assert long_ascii.reason == "a" * 4000 and long_chinese.reason == "垃圾" * 2000
    assert long_ascii.actor == "user:李" and short.actor == "42" and short.reason == "暴露垃圾 at 中山路"
    assert [r.sha256 for r in (long_ascii, long_chinese, short)] == [
        row_sha256(**{k: v for k, v in r._asdict().items() if k != "sha256"}) for r in (long_ascii, long_chinese, short)
    ]


def test_verify_audit_passes_an_intact_trail(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    rc, out = _verify(config_file, capsys)
    assert rc == 0, out
    assert "audit trail OK: 10 rows" in out


def test_verify_audit_finds_an_edited_row(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    _sql(data_dir, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 4")
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "edited: row 4 (order.dispatch by user:mallory" in out and "the row was edited" in out


def test_verify_audit_finds_an_edited_and_rehashed_row(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    row = list(iter_rows(db))[3]
    forged = row_sha256(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        reason="nothing happened",
        detail=row.detail,
        prev_sha256=row.prev_sha256,
    )
    _sql(data_dir, "UPDATE audit_log SET reason = 'nothing happened', sha256 = ? WHERE seq = 4", forged)
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "broken_link: row 5: prev_sha256" in out and "row 4 was edited" in out


def test_verify_audit_finds_a_deleted_row(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    _sql(data_dir, "DELETE FROM audit_log WHERE seq = 6")
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "deleted: row 6 missing: deleted (seq jumps to 7)" in out


def test_verify_audit_finds_a_truncated_tail(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    _sql(data_dir, "DELETE FROM audit_log WHERE seq > 7")
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "truncated: the trail ends at row 7 but checkpoint #1" in out
    assert "covers 10 rows: the tail was truncated (rows 8..10 are gone)" in out


def test_verify_audit_finds_a_truncated_tail_even_when_the_database_checkpoints_go_too(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 10)
    _checkpoint(data_dir)
    _fill(db, 5, start=10)
    _checkpoint(data_dir)
    off_server = data_dir.parent / "copied-off-the-server.jsonl"
    off_server.write_bytes((data_dir / CHECKPOINT_FILE).read_bytes())
    # The intruder truncates the trail, wipes the checkpoints in the database and the local file.
    _sql(data_dir, "DELETE FROM audit_log WHERE seq > 12")
    _sql(data_dir, "DELETE FROM audit_checkpoints")
    (data_dir / CHECKPOINT_FILE).write_text("")
    rc, out = _verify(config_file, capsys, "--checkpoints", str(off_server))
    assert rc == 1
    assert "the trail ends at row 12 but checkpoint #2" in out and "rows 13..15 are gone" in out


def test_verify_audit_finds_a_chain_rewritten_from_scratch(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 6)
    _checkpoint(data_dir)
    # Rewrite every row consistently (new content, new hashes): the chain itself is flawless.
    _sql(data_dir, "DELETE FROM audit_log")
    _fill(db, 6, start=100)
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "rewritten: checkpoint #1" in out and "rows up to 6 were rewritten" in out


def test_verify_audit_refuses_a_forged_checkpoint_line(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 4)
    _checkpoint(data_dir)
    path = data_dir / CHECKPOINT_FILE
    path.write_text(path.read_text().replace('"count": 4', '"count": 3'))
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "signature does not verify" in out


def test_verify_audit_without_any_checkpoint_says_what_it_cannot_rule_out(
    db: Database, data_dir: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db, 3)
    _checkpoint(data_dir)
    _sql(data_dir, "DELETE FROM audit_checkpoints")
    (data_dir / CHECKPOINT_FILE).unlink()
    rc, out = _verify(config_file, capsys)
    assert rc == 1
    assert "checkpoint export file was deleted" in out and "no validly signed checkpoint" in out


def test_the_signing_key_is_private_to_the_central(db: Database, data_dir: Path) -> None:
    _checkpoint(data_dir)
    assert (data_dir / "audit-key.pem").stat().st_mode & 0o777 == 0o600


def test_the_settings_name_the_topic_the_publisher_uses() -> None:
    from central.api.settings import AuditSettings
    from central.audit import CHECKPOINT_TOPIC

    assert AuditSettings().checkpoint_topic == CHECKPOINT_TOPIC == "gw/central/v1/audit/checkpoint"


# Any text SQLite can store as UTF-8 (no lone surrogates), control characters and non-ASCII included.
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@settings(deadline=None, max_examples=300)
@given(
    seq=st.integers(min_value=0, max_value=2**53 - 1),
    fields=st.fixed_dictionaries(
        {k: _text for k in ("at", "actor", "action", "subject", "reason", "detail", "prev_sha256")}
    ),
)
def test_a_rows_hash_is_the_sha256_of_its_rfc8785_json(seq: int, fields: dict[str, str]) -> None:
    # row_sha256 writes the JSON itself; rfc8785 is the reference it must match byte for byte.
    expected = hashlib.sha256(rfc8785.dumps({"seq": seq, **fields})).hexdigest()
    assert row_sha256(seq=seq, **fields) == expected
