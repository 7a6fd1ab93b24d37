"""`garbagewatch central users ...` and `... tokens ...`: manage people and API tokens from a shell.

Passwords are never command-line arguments (they would sit in shell history and `ps`): they are
prompted for, or read from stdin with --password-stdin. A token's text is printed once.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail
from central.auth.passwords import PasswordPolicyError
from central.auth.roles import Role
from central.auth.tokens import create_token, list_tokens, revoke_token
from central.auth.users import (
    UserError,
    add_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
    set_sites,
)
from central.config import load_config
from central.store.database import open_database
from central.timefmt import system_clock, utc_iso

__all__ = ["AUTH_COMMANDS", "add_auth_commands", "cli_actor", "run_auth_command"]

AUTH_COMMANDS = ("users", "tokens")
_ROLES = [r.value for r in Role]


def cli_actor() -> str:
    """'cli:<login name>': the actor of changes made from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def add_auth_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="people who sign in: add, list, passwd, role, sites, disable, enable")
    usub = users.add_subparsers(dest="users_command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, required=True, help="central YAML config")
        return p

    add = with_config(usub.add_parser("add", help="create a user (prompts for the password)"))
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=_ROLES)
    add.add_argument("--site", action="append", default=[], help="a site they cover (repeat for more)")
    add.add_argument("--display-name", default="")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    with_config(usub.add_parser("list", help="print the users"))
    passwd = with_config(usub.add_parser("passwd", help="set a user's password"))
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    role = with_config(usub.add_parser("role", help="change a user's role"))
    role.add_argument("username")
    role.add_argument("role", choices=_ROLES)
    sites = with_config(usub.add_parser("sites", help="set the sites a user covers (none: no site)"))
    sites.add_argument("username")
    sites.add_argument("sites", nargs="*")
    for name in ("disable", "enable"):
        p = with_config(usub.add_parser(name, help=f"{name} a user (and their personal tokens)"))
        p.add_argument("username")
        p.add_argument("--reason", default="")

    tokens = sub.add_parser("tokens", help="API tokens: create, list, revoke")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True)
    create = with_config(tsub.add_parser("create", help="create a token and print it (once)"))
    create.add_argument("name", help="what it is for, e.g. hotline-12345")
    create.add_argument("--role", required=True, choices=_ROLES)
    create.add_argument("--user", help="a person's token: acts as this user (same role)")
    create.add_argument("--site", action="append", help="confine a service token to a site (repeat)")
    create.add_argument("--expires-days", type=float, help="expire after this many days")
    with_config(tsub.add_parser("list", help="print the tokens (never their text)"))
    revoke = with_config(tsub.add_parser("revoke", help="revoke a token by id or name"))
    revoke.add_argument("token", help="id or name")
    revoke.add_argument("--reason", default="")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _users(args: argparse.Namespace, trail: AuditTrail, actor: str) -> int:
    db, now = trail.db, system_clock()
    cmd = args.users_command
    if cmd == "list":
        print(f"{'username':<24} {'role':<12} {'state':<9} sites")
        for u in list_users(db):
            state = "disabled" if u.disabled else "enabled"
            print(f"{u.username:<24} {u.role.value:<12} {state:<9} {','.join(sorted(u.sites)) or '-'}")
        return 0
    if cmd == "add":
        password = _read_password(args.password_stdin)
        user = add_user(
            db,
            args.username,
            args.role,
            password,
            sites=args.site,
            display_name=args.display_name,
            actor=actor,
            audit=trail,
            now=now,
        )
        print(f"user {user.username} added: {user.role.value}, sites {','.join(sorted(user.sites)) or '-'}")
    elif cmd == "passwd":
        set_password(db, args.username, _read_password(args.password_stdin), actor=actor, audit=trail, now=now)
        print(f"password of {args.username} changed")
    elif cmd == "role":
        set_role(db, args.username, args.role, actor=actor, audit=trail, now=now)
        print(f"{args.username} is now {args.role}")
    elif cmd == "sites":
        user = set_sites(db, args.username, args.sites, actor=actor, audit=trail, now=now)
        print(f"{user.username} covers {','.join(sorted(user.sites)) or 'no site'}")
    else:
        disabled = cmd == "disable"
        set_disabled(db, args.username, disabled, actor=actor, audit=trail, now=now, reason=args.reason)
        print(f"{args.username} {'disabled' if disabled else 'enabled'}")
    return 0


def _tokens(args: argparse.Namespace, trail: AuditTrail, actor: str) -> int:
    db, now = trail.db, system_clock()
    cmd = args.tokens_command
    if cmd == "list":
        print(f"{'id':<13} {'name':<24} {'role':<12} {'acts as':<24} {'state':<8} last used")
        for t in list_tokens(db):
            expired = t.expires_at is not None and now >= t.expires_at
            state = "revoked" if t.revoked_at else "expired" if expired else "active"
            used = utc_iso(t.last_used_at) if t.last_used_at else "never"
            print(f"{t.id:<13} {t.name:<24} {t.role.value:<12} {t.actor:<24} {state:<8} {used}")
        return 0
    if cmd == "create":
        expires = None if args.expires_days is None else now + args.expires_days * 86400.0
        token, text = create_token(
            db,
            name=args.name,
            role=args.role,
            username=args.user,
            sites=args.site,
            expires_at=expires,
            actor=actor,
            audit=trail,
            now=now,
        )
        print(f"token {token.name} ({token.id}) created: {token.role.value}, acts as {token.actor}", file=sys.stderr)
        print("it is shown only now; store it in the system that uses it:", file=sys.stderr)
        print(text)
        return 0
    token = revoke_token(db, args.token, actor=actor, audit=trail, now=now, reason=args.reason)
    print(f"token {token.name} ({token.id}) revoked")
    return 0


def run_auth_command(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    db = open_database(config.db_path)
    try:
        ensure_api_schema(db)
        trail = AuditTrail(db)
        actor = cli_actor()
        try:
            return _users(args, trail, actor) if args.command == "users" else _tokens(args, trail, actor)
        except (UserError, PasswordPolicyError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        db.close()
