"""`garbagewatch central verify-audit`: recompute the audit chain and check it against checkpoints.

Checkpoints come from the database, data_dir/audit-checkpoints.jsonl, any --checkpoints file
(a copy kept off the server is the one that counts) and, with --broker, the retained MQTT
message. The public key is data_dir/audit-key.pub.pem unless --public-key names a pinned copy.
Exit 0: intact; 1: problems found (each printed); 2: cannot check (no key, unreadable file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from central.api.context import ensure_api_schema
from central.audit.checkpoints import (
    CHECKPOINT_FILE,
    PUBLIC_KEY_FILE,
    CheckpointError,
    load_public_key_of,
    read_checkpoint_file,
    stored_checkpoints,
)
from central.audit.fetch import fetch_retained_checkpoint
from central.audit.verify import AuditProblem, SourcedCheckpoint, verify_audit
from central.config import load_config
from central.store.database import open_database

__all__ = ["AUDIT_COMMANDS", "add_audit_commands", "run_audit_command"]

AUDIT_COMMANDS = ("verify-audit",)


def add_audit_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify-audit", help="check the audit trail for edited, deleted or truncated rows")
    p.add_argument("--config", type=Path, required=True, help="central YAML config")
    p.add_argument(
        "--checkpoints", type=Path, action="append", default=[], help="a checkpoint export file (repeat for more)"
    )
    p.add_argument("--public-key", type=Path, help=f"the audit public key (default: data_dir/{PUBLIC_KEY_FILE})")
    p.add_argument("--broker", action="store_true", help="also read the retained checkpoint from the broker")
    p.add_argument("--broker-timeout", type=float, default=10.0, help="seconds to wait for it (default 10)")


def _from_file(path: Path, out: list[SourcedCheckpoint], problems: list[AuditProblem]) -> None:
    for lineno, item in read_checkpoint_file(path):
        where = f"{path} line {lineno}"
        if isinstance(item, CheckpointError):
            problems.append(AuditProblem("checkpoint", f"{where}: not a checkpoint ({item}): the file was altered"))
        else:
            out.append(SourcedCheckpoint(item, where))


def run_audit_command(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    key_path = args.public_key or config.data_dir / PUBLIC_KEY_FILE
    try:
        public = load_public_key_of(key_path)
    except CheckpointError as exc:
        print(f"error: cannot check the audit trail without its public key: {exc}", file=sys.stderr)
        return 2
    sources: list[SourcedCheckpoint] = []
    problems: list[AuditProblem] = []
    files = [config.data_dir / CHECKPOINT_FILE, *args.checkpoints]
    for path in files:
        if not path.exists():
            if path in args.checkpoints:
                print(f"error: {path}: no such file", file=sys.stderr)
                return 2
            problems.append(AuditProblem("checkpoint", f"{path} is missing: the checkpoint export file was deleted"))
            continue
        try:
            _from_file(path, sources, problems)
        except OSError as exc:
            print(f"error: {path}: cannot read: {exc}", file=sys.stderr)
            return 2
    if args.broker:
        try:
            sources.append(
                SourcedCheckpoint(fetch_retained_checkpoint(config.broker, timeout_s=args.broker_timeout), "mqtt")
            )
        except CheckpointError as exc:
            problems.append(AuditProblem("checkpoint", f"retained checkpoint on the broker: {exc}"))
    db = open_database(config.db_path)
    try:
        ensure_api_schema(db)
        sources.extend(SourcedCheckpoint(cp, "database") for cp in stored_checkpoints(db))
        report = verify_audit(db, sources, public)
    finally:
        db.close()
    report.problems[:0] = problems
    for problem in report.problems:
        print(f"{problem.kind}: {problem.message}")
    print(report.summary())
    return 0 if report.ok else 1
