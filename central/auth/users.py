"""People who sign in: a username, one role, an argon2id password hash and the sites they cover.

Every change is written with its audit row through the `audit` hook, in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.audit.hook import AuditHook
from central.auth.passwords import (
    PasswordPolicyError,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)
from central.auth.principal import Principal
from central.auth.roles import Role, parse_role
from central.timefmt import utc_iso
from wire.errors import WireError
from wire.ids import check_id

__all__ = [
    "User",
    "UserError",
    "add_user",
    "authenticate_user",
    "get_user",
    "list_users",
    "principal_of_user",
    "set_disabled",
    "set_password",
    "set_role",
    "set_sites",
]


class UserError(ValueError):
    """A user operation that cannot be done (unknown user, taken name, bad site); the text says which."""


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    sites: frozenset[str]
    display_name: str
    disabled: bool
    created_at: str
    updated_at: str


def _check_username(username: str) -> str:
    try:
        return check_id(username, "username")
    except WireError as exc:
        raise UserError(str(exc)) from None


def _check_sites(sites: Iterable[str]) -> frozenset[str]:
    out = set()
    for site in sites:
        try:
            out.add(check_id(site, "site"))
        except WireError as exc:
            raise UserError(str(exc)) from None
    return frozenset(out)


def _row_to_user(db: Database, row: dict[str, Any]) -> User:
    sites = frozenset(
        str(r[0]) for r in db.execute("SELECT site FROM user_sites WHERE username = ?", [row["username"]])
    )
    return User(
        username=row["username"],
        role=Role(row["role"]),
        sites=sites,
        display_name=row["display_name"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def get_user(db: Database, username: str) -> User | None:
    rows = list(db.query("SELECT * FROM users WHERE username = ?", [username]))
    return _row_to_user(db, rows[0]) if rows else None


def list_users(db: Database) -> list[User]:
    return [_row_to_user(db, r) for r in db.query("SELECT * FROM users ORDER BY username")]


def _require(db: Database, username: str) -> User:
    user = get_user(db, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def add_user(
    db: Database,
    username: str,
    role: Role | str,
    password: str,
    *,
    sites: Iterable[str] = (),
    display_name: str = "",
    actor: str,
    audit: AuditHook,
    now: float,
) -> User:
    """Create a user. Raises UserError (bad or taken name, bad site) or PasswordPolicyError."""
    username = _check_username(username)
    role = parse_role(role) if isinstance(role, str) else role
    site_set = _check_sites(sites)
    encoded = hash_password(password)  # before the transaction: it takes tens of milliseconds
    stamp = utc_iso(now)
    with db.atomic():
        if get_user(db, username) is not None:
            raise UserError(f"user {username!r} exists already")
        db.table("users").insert(
            {
                "username": username,
                "display_name": display_name,
                "role": role.value,
                "password_hash": encoded,
                "disabled": 0,
                "created_at": stamp,
                "updated_at": stamp,
                "password_changed_at": stamp,
            }
        )
        db.table("user_sites").insert_all([{"username": username, "site": s} for s in sorted(site_set)])
        audit(actor, "user.add", f"user:{username}", "", {"role": role.value, "sites": sorted(site_set)})
    return _require(db, username)


def set_password(db: Database, username: str, password: str, *, actor: str, audit: AuditHook, now: float) -> None:
    encoded = hash_password(password)
    stamp = utc_iso(now)
    with db.atomic():
        _require(db, username)
        db.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE username = ?",
            [encoded, stamp, stamp, username],
        )
        audit(actor, "user.password", f"user:{username}", "", {})


def set_role(db: Database, username: str, role: Role | str, *, actor: str, audit: AuditHook, now: float) -> User:
    role = parse_role(role) if isinstance(role, str) else role
    with db.atomic():
        before = _require(db, username)
        db.execute("UPDATE users SET role = ?, updated_at = ? WHERE username = ?", [role.value, utc_iso(now), username])
        audit(actor, "user.role", f"user:{username}", "", {"from": before.role.value, "to": role.value})
    return _require(db, username)


def set_sites(db: Database, username: str, sites: Iterable[str], *, actor: str, audit: AuditHook, now: float) -> User:
    site_set = _check_sites(sites)
    with db.atomic():
        before = _require(db, username)
        db.execute("DELETE FROM user_sites WHERE username = ?", [username])
        db.table("user_sites").insert_all([{"username": username, "site": s} for s in sorted(site_set)])
        db.execute("UPDATE users SET updated_at = ? WHERE username = ?", [utc_iso(now), username])
        audit(
            actor,
            "user.sites",
            f"user:{username}",
            "",
            {"from": sorted(before.sites), "to": sorted(site_set)},
        )
    return _require(db, username)


def set_disabled(
    db: Database, username: str, disabled: bool, *, actor: str, audit: AuditHook, now: float, reason: str = ""
) -> User:
    """Disable (or enable again) a user; a disabled user's sign-ins and personal tokens stop working."""
    with db.atomic():
        _require(db, username)
        db.execute(
            "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?",
            [int(disabled), utc_iso(now), username],
        )
        audit(actor, "user.disable" if disabled else "user.enable", f"user:{username}", reason, {})
    return _require(db, username)


def authenticate_user(db: Database, username: str, password: str) -> User | None:
    """The user, if the password matches and the user is enabled; None otherwise.

    Costs one argon2 verification whether or not the user exists. Rate limiting and auditing
    sign-ins belong to the caller (the console), which knows the client.
    """
    rows = list(db.query("SELECT * FROM users WHERE username = ?", [username])) if isinstance(username, str) else []
    if not rows:
        dummy_verify(password)
        return None
    row = rows[0]
    if not verify_password(row["password_hash"], password) or row["disabled"]:
        return None
    if needs_rehash(row["password_hash"]):
        # Cost parameters were raised since: store the hash at today's cost (the password matched).
        with contextlib.suppress(PasswordPolicyError):
            db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                [hash_password(password), row["username"]],
            )
    return _row_to_user(db, row)


def principal_of_user(user: User, via: str) -> Principal:
    return Principal(actor=f"user:{user.username}", role=user.role, sites=user.sites, via=via)
