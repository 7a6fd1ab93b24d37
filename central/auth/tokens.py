"""API tokens: `gwt_<id>_<secret>`, shown once at creation, stored only as their sha256.

A token is scoped to one role. A service token (a hotline, a reporting form) acts as
'token:<name>', optionally confined to some sites. A person's token acts as 'user:<name>', and
stops working when that user is disabled or changes role; it sees the user's sites as they are now.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.audit.hook import AuditHook
from central.auth.principal import Principal
from central.auth.roles import Role, parse_role
from central.auth.users import UserError, get_user
from central.timefmt import utc_iso
from wire.errors import WireError
from wire.ids import check_id

__all__ = [
    "TOKEN_PATTERN",
    "ApiToken",
    "TokenRefused",
    "authenticate_token",
    "create_token",
    "list_tokens",
    "revoke_token",
    "token_sha256",
]

TOKEN_PATTERN = re.compile(r"gwt_([0-9a-f]{12})_[0-9a-f]{64}")
# last_used_at is a write; once a minute per token is enough to tell which tokens are alive.
_TOUCH_EVERY_S = 60.0


class TokenRefused(Exception):
    """A token that does not authenticate; `reason` is safe to log (never the secret)."""

    def __init__(self, reason: str, token_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_id = token_id


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    role: Role
    username: str | None
    sites: frozenset[str] | None
    created_at: str
    created_by: str
    expires_at: float | None
    revoked_at: str | None
    last_used_at: float | None

    @property
    def actor(self) -> str:
        return f"user:{self.username}" if self.username else f"token:{self.name}"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _row_to_token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        username=row["username"],
        sites=None if row["sites"] is None else frozenset(json.loads(row["sites"])),
        created_at=row["created_at"],
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def list_tokens(db: Database) -> list[ApiToken]:
    return [_row_to_token(r) for r in db.query("SELECT * FROM api_tokens ORDER BY created_at, id")]


def _find(db: Database, ref: str) -> ApiToken | None:
    rows = list(db.query("SELECT * FROM api_tokens WHERE id = ? OR name = ?", [ref, ref]))
    return _row_to_token(rows[0]) if rows else None


def create_token(
    db: Database,
    *,
    name: str,
    role: Role | str,
    username: str | None = None,
    sites: Iterable[str] | None = None,
    expires_at: float | None = None,
    actor: str,
    audit: AuditHook,
    now: float,
) -> tuple[ApiToken, str]:
    """Create a token; return it and its text (the only time the text exists outside the caller).

    Raises UserError for a bad or taken name, an unknown or disabled user, a role other than
    the user's, or sites given for a person's token (it has the user's).
    """
    try:
        check_id(name, "token name")
        site_list = None if sites is None else sorted({check_id(s, "site") for s in sites})
    except WireError as exc:
        raise UserError(str(exc)) from None
    role = parse_role(role) if isinstance(role, str) else role
    with db.atomic():
        if username is not None:
            user = get_user(db, username)
            if user is None or user.disabled:
                raise UserError(f"no enabled user {username!r}")
            if user.role is not role:
                raise UserError(f"user {username!r} is {user.role.value}: a token of theirs cannot be {role.value}")
            if site_list is not None:
                raise UserError("a person's token sees the user's sites; do not give sites")
        if _find(db, name) is not None:
            raise UserError(f"a token named {name!r} exists already")
        token_id = secrets.token_hex(6)
        text = f"gwt_{token_id}_{secrets.token_hex(32)}"
        db.table("api_tokens").insert(
            {
                "id": token_id,
                "name": name,
                "token_sha256": token_sha256(text),
                "role": role.value,
                "username": username,
                "sites": None if site_list is None else json.dumps(site_list),
                "created_at": utc_iso(now),
                "created_by": actor,
                "expires_at": expires_at,
                "revoked_at": None,
                "revoked_by": None,
                "last_used_at": None,
            }
        )
        audit(
            actor,
            "token.create",
            f"token:{name}",
            "",
            {"id": token_id, "role": role.value, "user": username, "sites": site_list, "expires_at": expires_at},
        )
    token = _find(db, token_id)
    assert token is not None
    return token, text


def revoke_token(db: Database, ref: str, *, actor: str, audit: AuditHook, now: float, reason: str = "") -> ApiToken:
    """Revoke the token with this id or name (at once: the next request with it is refused)."""
    with db.atomic():
        token = _find(db, ref)
        if token is None:
            raise UserError(f"no token with id or name {ref!r}")
        if token.revoked_at is not None:
            raise UserError(f"token {token.name!r} was revoked already at {token.revoked_at}")
        db.execute("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?", [utc_iso(now), actor, token.id])
        audit(actor, "token.revoke", f"token:{token.name}", reason, {"id": token.id})
    revoked = _find(db, token.id)
    assert revoked is not None
    return revoked


def authenticate_token(db: Database, text: str, now: float) -> Principal:
    """The Principal a token text stands for; TokenRefused (with a loggable reason) otherwise."""
    match = TOKEN_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise TokenRefused("not a garbagewatch token (gwt_<12 hex>_<64 hex>)")
    token_id = match.group(1)
    rows = list(db.query("SELECT * FROM api_tokens WHERE token_sha256 = ?", [token_sha256(text)]))
    if not rows:
        raise TokenRefused("unknown token", token_id)
    token = _row_to_token(rows[0])
    if token.revoked_at is not None:
        raise TokenRefused(f"token {token.name!r} was revoked at {token.revoked_at}", token.id)
    if token.expires_at is not None and now >= token.expires_at:
        raise TokenRefused(f"token {token.name!r} expired at {utc_iso(token.expires_at)}", token.id)
    sites = token.sites
    if token.username is not None:
        user = get_user(db, token.username)
        if user is None or user.disabled:
            raise TokenRefused(f"token {token.name!r}: user {token.username!r} is disabled or gone", token.id)
        if user.role is not token.role:
            raise TokenRefused(
                f"token {token.name!r} is {token.role.value} but user {token.username!r} is now {user.role.value}",
                token.id,
            )
        sites = user.sites
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY_S:
        db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [now, token.id])
    return Principal(actor=token.actor, role=token.role, sites=sites, via=f"token:{token.id}")
