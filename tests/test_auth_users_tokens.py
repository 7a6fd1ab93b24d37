"""Users, roles, argon2 password hashes and API tokens, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail, iter_rows
from central.auth import (
    PasswordPolicyError,
    Permission,
    Role,
    TokenRefused,
    UserError,
    add_user,
    authenticate_token,
    authenticate_user,
    can,
    configure_hashing,
    create_token,
    hash_password,
    list_tokens,
    principal_of_user,
    revoke_token,
    set_disabled,
    set_password,
    set_role,
    set_sites,
)
from central.store.database import open_database

NOW = 1_800_000_000.0
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    # Production cost is 64 MiB and ~0.5 s a hash on a busy CI core; the tests check behaviour.
    configure_hashing(time_cost=1, memory_cost_kib=8, parallelism=1)
    yield
    configure_hashing()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = open_database(tmp_path / "gw.db")
    ensure_api_schema(d)
    yield d
    d.close()


@pytest.fixture
def trail(db: Database) -> AuditTrail:
    return AuditTrail(db, clock=lambda: NOW)


def test_roles_grant_what_the_issue_says() -> None:
    assert can(Role.ADMIN, Permission.USERS_MANAGE) and can(Role.ADMIN, Permission.ORDERS_ACT)
    assert can(Role.SUPERVISOR, Permission.ORDERS_ACT) and not can(Role.SUPERVISOR, Permission.USERS_MANAGE)
    # The auditor reads everything and exports, and acts on nothing.
    assert all(
        can(Role.AUDITOR, p) for p in (Permission.ORDERS_READ, Permission.EVIDENCE_READ, Permission.AUDIT_EXPORT)
    )
    assert not any(
        can(Role.AUDITOR, p) for p in (Permission.ORDERS_ACT, Permission.REPORTS_FILE, Permission.USERS_MANAGE)
    )
    # An integration files reports and reads them through Open311, no evidence, no orders API.
    assert can(Role.INTEGRATION, Permission.REPORTS_FILE) and can(Role.INTEGRATION, Permission.OPEN311_READ)
    assert not can(Role.INTEGRATION, Permission.EVIDENCE_READ) and not can(Role.INTEGRATION, Permission.ORDERS_READ)


def test_the_production_cost_is_rfc_9106_low_memory() -> None:
    configure_hashing()
    assert hash_password(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_cheaper_old_hash_is_upgraded_at_the_next_sign_in(db: Database, trail: AuditTrail) -> None:
    add_user(db, "alice", Role.SUPERVISOR, PASSWORD, actor="cli:root", audit=trail, now=NOW)
    configure_hashing(time_cost=2, memory_cost_kib=16, parallelism=1)
    assert authenticate_user(db, "alice", PASSWORD) is not None
    stored = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert authenticate_user(db, "alice", PASSWORD) is not None


def test_a_password_is_stored_as_a_salted_argon2id_hash_and_verifies(db: Database, trail: AuditTrail) -> None:
    add_user(db, "alice", Role.SUPERVISOR, PASSWORD, sites=["site-a"], actor="cli:root", audit=trail, now=NOW)
    add_user(db, "bob", Role.SUPERVISOR, PASSWORD, actor="cli:root", audit=trail, now=NOW)
    hashes = [r[0] for r in db.execute("SELECT password_hash FROM users ORDER BY username")]
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1], "same password, different salt, different hash"

    user = authenticate_user(db, "alice", PASSWORD)
    assert user is not None and user.role is Role.SUPERVISOR and user.sites == {"site-a"}
    assert authenticate_user(db, "alice", PASSWORD + "x") is None
    assert authenticate_user(db, "nobody", PASSWORD) is None
    assert authenticate_user(db, "alice", "x" * 5000) is None  # over-long input: refused, not hashed


def test_the_password_policy_and_bad_names_are_refused_with_a_reason(db: Database, trail: AuditTrail) -> None:
    with pytest.raises(PasswordPolicyError, match="at least 10"):
        add_user(db, "carol", Role.AUDITOR, "short", actor="cli:root", audit=trail, now=NOW)
    with pytest.raises(UserError, match="not a valid id"):
        add_user(db, "../etc", Role.AUDITOR, PASSWORD, actor="cli:root", audit=trail, now=NOW)
    with pytest.raises(UserError, match="not a valid id"):
        add_user(db, "dave", Role.SUPERVISOR, PASSWORD, sites=["Site A"], actor="cli:root", audit=trail, now=NOW)
    add_user(db, "carol", Role.AUDITOR, PASSWORD, actor="cli:root", audit=trail, now=NOW)
    with pytest.raises(UserError, match="exists already"):
        add_user(db, "carol", Role.ADMIN, PASSWORD, actor="cli:root", audit=trail, now=NOW)


def test_user_changes_are_audited_and_a_disabled_user_cannot_sign_in(db: Database, trail: AuditTrail) -> None:
    add_user(db, "alice", Role.SUPERVISOR, PASSWORD, sites=["site-a"], actor="cli:root", audit=trail, now=NOW)
    set_sites(db, "alice", ["site-a", "site-b"], actor="user:admin", audit=trail, now=NOW)
    set_role(db, "alice", "auditor", actor="user:admin", audit=trail, now=NOW)
    set_password(db, "alice", "another long password", actor="user:admin", audit=trail, now=NOW)
    set_disabled(db, "alice", True, actor="user:admin", audit=trail, now=NOW, reason="left the team")
    assert authenticate_user(db, "alice", "another long password") is None
    rows = list(iter_rows(db))
    assert [r.action for r in rows] == ["user.add", "user.sites", "user.role", "user.password", "user.disable"]
    assert all(r.subject == "user:alice" for r in rows)
    assert rows[-1].reason == "left the team" and rows[2].detail == '{"from":"supervisor","to":"auditor"}'
    assert "password" not in rows[3].detail and PASSWORD not in "".join(r.detail for r in rows)


def test_a_token_is_stored_only_as_its_sha256_and_authenticates_its_role(db: Database, trail: AuditTrail) -> None:
    token, text = create_token(db, name="hotline-12345", role="integration", actor="cli:root", audit=trail, now=NOW)
    assert text.startswith(f"gwt_{token.id}_")
    raw = sqlite3.connect(db.conn.execute("PRAGMA database_list").fetchone()[2]).execute("SELECT * FROM api_tokens")
    assert text not in repr(raw.fetchall()), "the token text is not in the database"
    p = authenticate_token(db, text, NOW)
    assert p.actor == "token:hotline-12345" and p.role is Role.INTEGRATION and p.sites is None
    assert p.via == f"token:{token.id}"
    with pytest.raises(TokenRefused, match="unknown"):
        authenticate_token(db, text[:-1] + ("0" if text[-1] != "0" else "1"), NOW)
    with pytest.raises(TokenRefused, match="not a garbagewatch token"):
        authenticate_token(db, "Bearer nonsense", NOW)


def test_revoked_and_expired_tokens_are_refused(db: Database, trail: AuditTrail) -> None:
    _, text = create_token(db, name="form", role="integration", actor="cli:root", audit=trail, now=NOW)
    _, short = create_token(
        db, name="temp", role="auditor", expires_at=NOW + 60, actor="cli:root", audit=trail, now=NOW
    )
    assert authenticate_token(db, short, NOW + 59).role is Role.AUDITOR
    with pytest.raises(TokenRefused, match="expired"):
        authenticate_token(db, short, NOW + 60)
    revoke_token(db, "form", actor="user:admin", audit=trail, now=NOW, reason="leaked")
    with pytest.raises(TokenRefused, match="revoked"):
        authenticate_token(db, text, NOW)
    with pytest.raises(UserError, match="revoked already"):
        revoke_token(db, "form", actor="user:admin", audit=trail, now=NOW)
    actions = [(r.action, r.subject, r.reason) for r in iter_rows(db)]
    assert ("token.revoke", "token:form", "leaked") in actions
    assert {t.name for t in list_tokens(db)} == {"form", "temp"}


def test_a_persons_token_follows_the_user_and_their_sites(db: Database, trail: AuditTrail) -> None:
    add_user(db, "alice", Role.SUPERVISOR, PASSWORD, sites=["site-a"], actor="cli:root", audit=trail, now=NOW)
    with pytest.raises(UserError, match="cannot be admin"):
        create_token(db, name="alice-admin", role="admin", username="alice", actor="cli:root", audit=trail, now=NOW)
    _, text = create_token(
        db, name="alice-cli", role="supervisor", username="alice", actor="cli:root", audit=trail, now=NOW
    )
    p = authenticate_token(db, text, NOW)
    assert p.actor == "user:alice" and p.sites == frozenset({"site-a"})
    assert p.sees_site("site-a") and not p.sees_site("site-b")
    set_sites(db, "alice", ["site-b"], actor="user:admin", audit=trail, now=NOW)
    assert authenticate_token(db, text, NOW).sites == frozenset({"site-b"})
    set_role(db, "alice", "auditor", actor="user:admin", audit=trail, now=NOW)
    with pytest.raises(TokenRefused, match="now auditor"):
        authenticate_token(db, text, NOW)
    set_role(db, "alice", "supervisor", actor="user:admin", audit=trail, now=NOW)
    set_disabled(db, "alice", True, actor="user:admin", audit=trail, now=NOW)
    with pytest.raises(TokenRefused, match="disabled"):
        authenticate_token(db, text, NOW)


def test_a_service_token_can_be_confined_to_sites(db: Database, trail: AuditTrail) -> None:
    _, text = create_token(
        db, name="district-7", role="integration", sites=["site-a"], actor="cli:root", audit=trail, now=NOW
    )
    p = authenticate_token(db, text, NOW)
    assert p.visible_sites() == frozenset({"site-a"}) and not p.sees_site("site-b")
    # Admins and auditors see every site whatever a list says.
    user = add_user(db, "eve", Role.AUDITOR, PASSWORD, sites=["site-a"], actor="cli:root", audit=trail, now=NOW)
    assert principal_of_user(user, "session").sees_site("site-z")
