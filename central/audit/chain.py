"""The hash-chained audit trail: append a row, read rows, the chain head.

Row n's sha256 covers its own fields and row n-1's sha256:

    sha256 = sha256(RFC 8785 JSON of {seq, at, actor, action, subject, reason, detail, prev_sha256})

where `detail` is the row's stored JSON text (compared as text, never re-serialised) and the
first row's prev_sha256 is 64 zeros. An `AuditTrail` is bound to one connection (one thread) and
is itself an `AuditHook`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.audit.hook import Detail
from central.timefmt import Clock, system_clock, utc_iso
from wire.errors import WireError
from wire.signing import canonical_json

__all__ = ["GENESIS_SHA256", "AuditRow", "AuditTrail", "chain_head", "detail_text", "iter_rows", "row_sha256"]

log = logging.getLogger("central.audit")

GENESIS_SHA256 = "0" * 64
_MAX_FIELD_CHARS = 4000


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    reason: str
    detail: str
    prev_sha256: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """The row for JSON output, with `detail` parsed (the hash is over the text in `detail_json`)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "reason": self.reason,
            "detail": json.loads(self.detail),
            "detail_json": self.detail,
            "prev_sha256": self.prev_sha256,
            "sha256": self.sha256,
        }


def row_sha256(
    *, seq: int, at: str, actor: str, action: str, subject: str, reason: str, detail: str, prev_sha256: str
) -> str:
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "reason": reason,
        "detail": detail,
        "prev_sha256": prev_sha256,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def detail_text(detail: Detail) -> str:
    """RFC 8785 text of `detail`. Something that is not JSON is kept as its repr rather than lost."""
    if detail is None:
        return "null"
    try:
        return canonical_json(dict(detail)).decode()
    except (WireError, TypeError, ValueError) as exc:
        log.warning("audit detail is not JSON (%s); kept as text", exc)
        return canonical_json({"unserialisable": repr(detail)[:_MAX_FIELD_CHARS]}).decode()


def _clip(value: str, what: str) -> str:
    if not isinstance(value, str):
        value = str(value)
    try:
        value.encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be stored or hashed as UTF-8: keep it visible as an escape.
        log.warning("audit %s holds text that is not UTF-8; kept escaped", what)
        value = value.encode("utf-8", "backslashreplace").decode()
    if len(value) > _MAX_FIELD_CHARS:
        log.warning("audit %s of %d characters clipped to %d", what, len(value), _MAX_FIELD_CHARS)
        return value[:_MAX_FIELD_CHARS]
    return value


def _row(r: Any) -> AuditRow:
    return AuditRow(
        seq=int(r[0]),
        at=str(r[1]),
        actor=str(r[2]),
        action=str(r[3]),
        subject=str(r[4]),
        reason=str(r[5]),
        detail=str(r[6]),
        prev_sha256=str(r[7]),
        sha256=str(r[8]),
    )


_COLUMNS = "seq, at, actor, action, subject, reason, detail, prev_sha256, sha256"


def iter_rows(db: Database, after_seq: int = 0, limit: int | None = None) -> Iterator[AuditRow]:
    """Rows in seq order, from after_seq + 1 on (streamed: the trail may be long)."""
    sql = f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq"
    params: list[Any] = [after_seq]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for r in db.execute(sql, params):
        yield _row(r)


def chain_head(db: Database) -> tuple[int, str]:
    """(seq of the last row, its sha256); (0, 64 zeros) for an empty trail."""
    r = db.execute("SELECT seq, sha256 FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(r[0]), str(r[1])) if r else (0, GENESIS_SHA256)


class AuditTrail:
    """Appends rows through one connection; call it as an AuditHook.

    Inside the caller's transaction the row commits or rolls back with the caller's change;
    outside one it is its own `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, actor: str, action: str, subject: str, reason: str, detail: Detail) -> None:
        self.append(actor, action, subject, reason, detail)

    def append(self, actor: str, action: str, subject: str, reason: str = "", detail: Detail = None) -> AuditRow:
        fields = {
            "at": utc_iso(self.clock()),
            "actor": _clip(actor, "actor"),
            "action": _clip(action, "action"),
            "subject": _clip(subject, "subject"),
            "reason": _clip(reason, "reason"),
            "detail": detail_text(detail),
        }
        conn = self.db.conn
        with self._lock:
            own = not conn.in_transaction
            conn.execute("BEGIN IMMEDIATE" if own else "SAVEPOINT audit_append")
            try:
                row = self._insert(fields)
            except BaseException:
                if conn.in_transaction:
                    if own:
                        conn.execute("ROLLBACK")
                    else:
                        conn.execute("ROLLBACK TO SAVEPOINT audit_append")
                        conn.execute("RELEASE SAVEPOINT audit_append")
                raise
            conn.execute("COMMIT" if own else "RELEASE SAVEPOINT audit_append")
        return row

    def _insert(self, f: dict[str, str]) -> AuditRow:
        conn = self.db.conn
        # Insert first: the write takes SQLite's write lock, so no other connection can append
        # between reading the previous row and linking to it.
        cur = conn.execute(
            "INSERT INTO audit_log (at, actor, action, subject, reason, detail, prev_sha256, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, '', '')",
            [f["at"], f["actor"], f["action"], f["subject"], f["reason"], f["detail"]],
        )
        seq = int(cur.lastrowid or 0)
        prev = conn.execute("SELECT sha256 FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT 1", [seq]).fetchone()
        prev_sha = str(prev[0]) if prev else GENESIS_SHA256
        sha = row_sha256(seq=seq, prev_sha256=prev_sha, **f)
        conn.execute("UPDATE audit_log SET prev_sha256 = ?, sha256 = ? WHERE seq = ?", [prev_sha, sha, seq])
        return AuditRow(seq=seq, prev_sha256=prev_sha, sha256=sha, **f)
