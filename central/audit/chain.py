"""The hash-chained audit trail: append a row, read rows, the chain head.

Row n's sha256 covers its own fields and row n-1's sha256:

    sha256 = sha256(RFC 8785 JSON of {seq, at, actor, action, subject, reason, detail, prev_sha256})

where `detail` is the row's stored JSON text (compared as text, never re-serialised) and the
first row's prev_sha256 is 64 zeros. An `AuditTrail` is bound to one connection (one thread) and
is itself an `AuditHook`. `append_many` appends a batch in one statement (the deadline sweep's
thousands of `order.escalate` rows).

The canonical JSON is RFC 8785. The plain values audit rows hold (strings, safe integers, bools,
null, lists, objects with ASCII keys) come out of the C `json` encoder byte for byte the same as
out of `rfc8785` at a tenth of the cost; anything else (floats, non-ASCII keys) goes through
`rfc8785` itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from sqlite_utils import Database

from central.audit.hook import Detail
from central.timefmt import Clock, system_clock, utc_iso
from wire.errors import WireError
from wire.signing import canonical_json

__all__ = [
    "GENESIS_SHA256",
    "AuditRow",
    "AuditTrail",
    "Entry",
    "canonical",
    "chain_head",
    "detail_text",
    "iter_rows",
    "row_sha256",
]

log = logging.getLogger("central.audit")

GENESIS_SHA256 = "0" * 64
_MAX_FIELD_CHARS = 4000
_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are doubles: larger integers are refused, as rfc8785 does
_plain_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
# How _plain_json writes a string (json's C encoder where there is one).
_string = json.encoder.encode_basestring

# One audit entry as an AuditHook receives it: (actor, action, subject, reason, detail).
Entry = tuple[str, str, str, str, Detail]
# A row's fields between seq and prev_sha256, in column order: (at, actor, action, subject, reason, detail).
_Fields = tuple[str, str, str, str, str, str]


class AuditRow(NamedTuple):
    """One row as stored, fields in the table's column order (so a row is its own INSERT parameters).

    A named tuple rather than a frozen dataclass: the deadline sweep makes thousands at once, at
    half the cost each."""

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
    return _row_sha256(seq, at, actor, action, subject, reason, detail, prev_sha256)


def _row_sha256(
    seq: int, at: str, actor: str, action: str, subject: str, reason: str, detail: str, prev_sha256: str
) -> str:
    """row_sha256 with positional arguments, in the table's column order (append_many's loop)."""
    if (
        type(seq) is int
        and 0 <= seq <= _SAFE_INT
        and type(action) is str
        and type(actor) is str
        and type(at) is str
        and type(detail) is str
        and type(prev_sha256) is str
        and type(reason) is str
        and type(subject) is str
    ):
        # The fields as stored (text, and seq): their RFC 8785 object written directly, keys in
        # the sorted order canonical() would give them, each string escaped by the C encoder.
        # Byte for byte what canonical(body) below returns (tests/test_audit_chain.py); the
        # deadline sweep hashes thousands of rows per transaction.
        text = (
            f'{{"action":{_string(action)},"actor":{_string(actor)},"at":{_string(at)},'
            f'"detail":{_string(detail)},"prev_sha256":{_string(prev_sha256)},"reason":{_string(reason)},'
            f'"seq":{seq},"subject":{_string(subject)}}}'
        )
        try:
            return hashlib.sha256(text.encode()).hexdigest()
        except UnicodeEncodeError:
            pass  # a lone surrogate: canonical() refuses it with its own error
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
    return hashlib.sha256(canonical(body)).hexdigest()


def _plain(value: Any) -> bool:
    """True if the C encoder writes `value` exactly as RFC 8785 does (exact types: no subclasses)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if kind is dict:
        for k, v in value.items():
            # ASCII keys: code point order (sort_keys) is RFC 8785's UTF-16 order.
            if type(k) is not str or not k.isascii() or (type(v) is not str and not _plain(v)):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(v) is str or _plain(v) for v in value)
    return False  # floats (ECMAScript number text), other types: rfc8785 decides


def canonical(obj: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a JSON object (raises WireError like wire.signing.canonical_json)."""
    if _plain(obj):
        try:
            # Strings escape the same way in both (the two-character escapes, else \u00xx).
            return _plain_json(obj).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it with its own error
    return canonical_json(obj)


def detail_text(detail: Detail) -> str:
    """RFC 8785 text of `detail`. Something that is not JSON is kept as its repr rather than lost."""
    if detail is None:
        return "null"
    try:
        return canonical(dict(detail)).decode()
    except (WireError, TypeError, ValueError) as exc:
        log.warning("audit detail is not JSON (%s); kept as text", exc)
        return canonical({"unserialisable": repr(detail)[:_MAX_FIELD_CHARS]}).decode()


def _clip(value: str, what: str) -> str:
    if type(value) is str and len(value) <= _MAX_FIELD_CHARS and value.isascii():
        return value  # the common case, checked without encoding (the sweep clips thousands)
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

    Inside the caller's transaction the rows commit or roll back with the caller's change;
    outside one each call is its own `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, actor: str, action: str, subject: str, reason: str, detail: Detail) -> None:
        self.append(actor, action, subject, reason, detail)

    def append(self, actor: str, action: str, subject: str, reason: str = "", detail: Detail = None) -> AuditRow:
        return self.append_many([(actor, action, subject, reason, detail)])[0]

    def append_many(self, entries: Iterable[Entry]) -> list[AuditRow]:
        """Append the entries in order, all stamped now; all of them or (on an error) none."""
        at = utc_iso(self.clock())
        # Entries that pass the same detail object (the sweep's orders that took the same steps)
        # share its text: serialised once per batch. Keyed by id(), so the list keeps them all alive.
        batch = list(entries)
        texts: dict[int, str] = {}
        todo: list[_Fields] = []
        for actor, action, subject, reason, detail in batch:
            text = texts.get(id(detail))
            if text is None:
                text = texts[id(detail)] = detail_text(detail)
            todo.append(
                (
                    at,
                    _clip(actor, "actor"),
                    _clip(action, "action"),
                    _clip(subject, "subject"),
                    _clip(reason, "reason"),
                    text,
                )
            )
        if not todo:
            return []
        conn = self.db.conn
        with self._lock:
            own = not conn.in_transaction
            conn.execute("BEGIN IMMEDIATE" if own else "SAVEPOINT audit_append")
            try:
                rows = self._insert(todo)
            except BaseException:
                if conn.in_transaction:
                    if own:
                        conn.execute("ROLLBACK")
                    else:
                        conn.execute("ROLLBACK TO SAVEPOINT audit_append")
                        conn.execute("RELEASE SAVEPOINT audit_append")
                raise
            conn.execute("COMMIT" if own else "RELEASE SAVEPOINT audit_append")
        return rows

    def _insert(self, todo: list[_Fields]) -> list[AuditRow]:
        conn = self.db.conn
        # Insert the first row before reading the one before it: the write takes SQLite's write
        # lock, so no other connection can append between reading the previous row and linking to it.
        cur = conn.execute(
            "INSERT INTO audit_log (at, actor, action, subject, reason, detail, prev_sha256, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, '', '')",
            todo[0],
        )
        seq = int(cur.lastrowid or 0)
        prev = conn.execute("SELECT sha256 FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT 1", [seq]).fetchone()
        prev_sha = str(prev[0]) if prev else GENESIS_SHA256
        rows = []
        for n, f in enumerate(todo, seq):
            sha = _row_sha256(n, *f, prev_sha)
            rows.append(AuditRow(n, *f, prev_sha, sha))
            prev_sha = sha
        first = rows[0]
        conn.execute(
            "UPDATE audit_log SET prev_sha256 = ?, sha256 = ? WHERE seq = ?", [first.prev_sha256, first.sha256, seq]
        )
        # The rest follow on without gaps: seq is the rowid, and this connection holds the write lock.
        conn.executemany(
            "INSERT INTO audit_log (seq, at, actor, action, subject, reason, detail, prev_sha256, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[1:],
        )
        return rows
