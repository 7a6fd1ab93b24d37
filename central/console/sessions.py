"""Server-side sign-in sessions and sign-in throttling, in the central's SQLite file.

    token, session = open_session(db, "li", now=now, settings=s, ip=ip, user_agent=ua)
    session = find_session(db, token, now=now, settings=s)       # None: expired, revoked, unknown

The cookie carries `token` (32 random bytes, hex); the table keeps sha256(token) only.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.console.settings import ConsoleSettings
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = [
    "Session",
    "clear_login_failures",
    "find_session",
    "login_retry_after",
    "open_session",
    "record_login_failure",
    "revoke_session",
    "revoke_user_sessions",
]

_TOKEN_HEX = 64
# last_seen_ts is a write; once a minute is precise enough for an idle timeout of hours.
_TOUCH_EVERY_S = 60.0
_MAX_FIELD = 200


@dataclass(frozen=True)
class Session:
    id: str
    username: str
    csrf_token: str
    created_ts: float
    last_seen_ts: float
    expires_ts: float


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _row(r: dict[str, Any]) -> Session:
    return Session(
        id=r["id"],
        username=r["username"],
        csrf_token=r["csrf_token"],
        created_ts=float(r["created_ts"]),
        last_seen_ts=float(r["last_seen_ts"]),
        expires_ts=float(r["expires_ts"]),
    )


def open_session(
    db: Database, username: str, *, now: float, settings: ConsoleSettings, ip: str, user_agent: str
) -> tuple[str, Session]:
    """A new session for `username` (always a new token: no session fixation); return (cookie token, session)."""
    token = secrets.token_hex(_TOKEN_HEX // 2)
    row = {
        "id": _session_id(token),
        "username": username,
        "csrf_token": secrets.token_urlsafe(32),
        "created_ts": now,
        "last_seen_ts": now,
        "expires_ts": now + settings.session_max_s,
        "ip": ip[:_MAX_FIELD],
        "user_agent": user_agent[:_MAX_FIELD],
        "revoked_at": None,
        "revoked_by": None,
    }
    with immediate(db):
        # Sessions that ended long ago are of no use; keep the table small.
        db.execute("DELETE FROM console_sessions WHERE expires_ts < ?", [now - settings.session_max_s])
        db.table("console_sessions").insert(row)
    return token, _row(row)


def find_session(db: Database, token: str | None, *, now: float, settings: ConsoleSettings) -> Session | None:
    """The live session of a cookie token; None when unknown, revoked, idle too long or past its end."""
    if not token or len(token) != _TOKEN_HEX or any(c not in "0123456789abcdef" for c in token):
        return None
    rows = list(db.query("SELECT * FROM console_sessions WHERE id = ?", [_session_id(token)]))
    if not rows or rows[0]["revoked_at"] is not None:
        return None
    session = _row(rows[0])
    if now >= session.expires_ts or now - session.last_seen_ts >= settings.session_idle_s:
        return None
    if now - session.last_seen_ts >= _TOUCH_EVERY_S:
        db.execute("UPDATE console_sessions SET last_seen_ts = ? WHERE id = ?", [now, session.id])
    return session


def revoke_session(db: Database, session_id: str, *, actor: str, now: float) -> None:
    db.execute(
        "UPDATE console_sessions SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        [utc_iso(now), actor, session_id],
    )


def revoke_user_sessions(db: Database, username: str, *, actor: str, now: float) -> int:
    """End every session of a user (disabled, or their role changed); return how many were live."""
    cursor = db.execute(
        "UPDATE console_sessions SET revoked_at = ?, revoked_by = ? WHERE username = ? AND revoked_at IS NULL",
        [utc_iso(now), actor, username],
    )
    return int(cursor.rowcount)


# -- sign-in throttling ------------------------------------------------------------------------------


def login_retry_after(db: Database, username: str, ip: str, *, now: float, settings: ConsoleSettings) -> float:
    """Seconds until this username and address may try again; 0 when they may now.

    Checked before the password is: a refused attempt costs no argon2 work and says nothing
    about whether the password was right.
    """
    since = now - settings.login_window_s
    waits = [0.0]
    for sql, params, limit in (
        (
            "SELECT at_ts FROM console_login_failures WHERE username = ? AND ip = ? AND at_ts > ? ORDER BY at_ts",
            [username[:_MAX_FIELD], ip, since],
            settings.login_max_failures,
        ),
        (
            "SELECT at_ts FROM console_login_failures WHERE ip = ? AND at_ts > ? ORDER BY at_ts",
            [ip, since],
            settings.login_max_failures_per_ip,
        ),
    ):
        times = [float(r[0]) for r in db.execute(sql, params)]
        if len(times) >= limit:
            # Allowed again when enough of the oldest failures have left the window.
            waits.append(times[len(times) - limit] + settings.login_window_s - now)
    return max(0.0, math.ceil(max(waits)))


def record_login_failure(db: Database, username: str, ip: str, *, now: float, settings: ConsoleSettings) -> None:
    with immediate(db):
        db.execute("DELETE FROM console_login_failures WHERE at_ts <= ?", [now - settings.login_window_s])
        db.execute(
            "INSERT INTO console_login_failures (username, ip, at_ts) VALUES (?, ?, ?)",
            [username[:_MAX_FIELD], ip, now],
        )


def clear_login_failures(db: Database, username: str, ip: str) -> None:
    db.execute("DELETE FROM console_login_failures WHERE username = ? AND ip = ?", [username[:_MAX_FIELD], ip])
