"""The audit trail's batch append and its fast canonical JSON, checked against rfc8785 itself."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from sqlite_utils import Database

from central.audit import GENESIS_SHA256, AuditTrail, ensure_schema, iter_rows
from central.audit.chain import Entry, canonical
from central.store.database import open_database
from wire.errors import WireError

NOW = 1_800_000_000.0
_CHARS = [
    "a",
    "Z",
    " ",
    "/",
    '"',
    "\\",
    "\n",
    "\t",
    "\b",
    "\f",
    "\r",
    "\x00",
    "\x1f",
    "\x7f",
    "é",
    "中",
    "\u2028",
    "😀",
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = open_database(tmp_path / "gw.db")
    ensure_schema(d)
    yield d
    d.close()


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(0, 6)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randint(0, 8 if depth < 3 else 4)
    if pick == 0:
        return _text(rng)
    if pick == 1:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if pick == 2:
        return rng.choice([True, False, None, 0, -1])
    if pick == 3:
        return rng.random() * 10 ** rng.randint(-9, 25)  # floats: rfc8785 writes them
    if pick == 4:
        return rng.randint(-1000, 1000)
    if pick in (5, 6):
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _rfc8785_or_error(obj: dict[str, Any]) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError:
        return WireError


def _canonical_or_error(obj: dict[str, Any]) -> bytes | type[Exception]:
    try:
        return canonical(obj)
    except WireError:
        return WireError


def test_canonical_json_is_byte_for_byte_rfc8785() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        obj = {_text(rng): _value(rng) for _ in range(rng.randint(0, 5))}
        assert _canonical_or_error(obj) == _rfc8785_or_error(obj), repr(obj)
    # What the fast path must hand over: non-ASCII keys (UTF-16 order), floats, huge integers, lone surrogates.
    for obj in ({"😀": 1, "\uffff": 2}, {"a": 1.0, "b": 1e21}, {"n": 2**60}, {"s": "\ud800"}, {"t": (1, "x")}):
        assert _canonical_or_error(obj) == _rfc8785_or_error(obj), repr(obj)


def _entries(n: int) -> list[Entry]:
    return [
        ("system:escalation", "order.escalate", f"order:WO-{i:06d}", "overdue (level 1)", {"level": 1, "i": i})
        for i in range(n)
    ]


def test_a_batch_chains_like_rows_appended_one_by_one(db: Database) -> None:
    trail = AuditTrail(db, clock=lambda: NOW)
    trail("user:li", "order.dispatch", "order:WO-x", "", {"to": "zhao"})
    with db.atomic():
        rows = trail.append_many(_entries(300))
    assert [r.seq for r in rows] == list(range(2, 302))
    stored = list(iter_rows(db))
    assert len(stored) == 301
    prev = GENESIS_SHA256
    for row in stored:
        # Recomputed with rfc8785 itself, not the code under test.
        body: dict[str, Any] = {
            "seq": row.seq,
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "reason": row.reason,
            "detail": row.detail,
            "prev_sha256": prev,
        }
        assert row.prev_sha256 == prev
        assert row.sha256 == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        prev = row.sha256
    assert stored[5].detail == '{"i":4,"level":1}'


def test_a_batch_rolls_back_with_the_transaction_it_joined(db: Database) -> None:
    trail = AuditTrail(db, clock=lambda: NOW)
    with pytest.raises(RuntimeError), db.atomic():
        trail.append_many(_entries(10))
        raise RuntimeError("the sweep's writes failed")
    assert list(iter_rows(db)) == []
    assert trail.append_many([]) == []
    assert [r.seq for r in trail.append_many(_entries(3))] == [1, 2, 3]  # its own transaction
