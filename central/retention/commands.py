"""`garbagewatch central hold | release-hold | holds | retention-sweep`: retention from a shell.

The same calls as the API's (central/api/holds.py), on the central's database while the service
runs. Each change is an audit row by `cli:<login>`, as the other commands' are; a sweep run by
hand is audited with that actor too (the service's own sweep is `system:retention`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlite_utils import Database

from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail
from central.auth.commands import cli_actor
from central.config import CentralConfig, load_config
from central.evidence_store import ContentStore
from central.retention.holds import HoldError, list_holds, place_hold, release_hold
from central.retention.sweep import plan, sweep
from central.store.database import open_database
from central.timefmt import system_clock

__all__ = ["RETENTION_COMMANDS", "add_retention_commands", "run_retention_command"]

RETENTION_COMMANDS = frozenset({"hold", "release-hold", "holds", "retention-sweep"})


def add_retention_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the four subcommands to `garbagewatch central`'s subparsers."""

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, required=True, help="central YAML config")
        return p

    for name, text in (
        ("hold", "place a legal hold: keep the order's evidence whatever the retention period"),
        ("release-hold", "release an order's legal hold (retention applies to its evidence again)"),
    ):
        p = with_config(sub.add_parser(name, help=text))
        p.add_argument("--order", required=True, help="the work order id (WO-YYYYMMDD-NNNNNN)")
        p.add_argument("--reason", required=True, help="why (recorded with the hold and in the audit trail)")
    with_config(sub.add_parser("holds", help="print the active legal holds"))
    sweep_cmd = with_config(sub.add_parser("retention-sweep", help="delete the evidence files retention says are due"))
    sweep_cmd.add_argument("--dry-run", action="store_true", help="print what would be deleted; delete nothing")


def _holds(db: Database) -> None:
    print(f"{'order':<22} {'site':<16} {'placed (UTC)':<25} {'by':<24} reason")
    for h in list_holds(db):
        print(f"{h.work_order_id:<22} {h.site or '-':<16} {h.placed_at:<25} {h.placed_by:<24} {h.reason}")


def _sweep(config: CentralConfig, trail: AuditTrail, actor: str, dry_run: bool) -> int:
    store = ContentStore(config.evidence_dir)
    days = config.retention.evidence_days
    if days is None:
        print("retention.evidence_days is null: evidence is kept forever, no file is due")
    now = system_clock()
    if dry_run:
        p = plan(trail.db, store, config.retention, now)
        print(f"would purge {len(p.due)} file(s), {sum(f.size for f in p.due)} bytes:")
        for f in p.due:
            print(f"  {f.sha256} {f.size:>12} {f.reason(days or 0)}")
        if p.leftovers:
            print(f"would unlink {len(p.leftovers)} file(s) of rows purged earlier (a sweep was interrupted):")
            for sha in p.leftovers:
                print(f"  {sha}")
        return 0
    result = sweep(trail.db, store, config.retention, now, audit=trail, actor=actor)
    print(
        f"purged {result.purged} file(s), unlinked {result.leftovers} leftover(s) of earlier sweeps,"
        f" {result.bytes} bytes freed, {result.errors} error(s)"
    )
    return 1 if result.errors else 0


def run_retention_command(args: argparse.Namespace) -> int:
    """Run one of RETENTION_COMMANDS; 0 on success, 1 when refused or a file could not be deleted."""
    config = load_config(args.config)
    db = open_database(config.db_path)
    try:
        ensure_api_schema(db)  # the audit trail's tables, and the Open311 table the rule reads
        trail = AuditTrail(db)
        actor = cli_actor()
        if args.command == "holds":
            _holds(db)
            return 0
        if args.command == "retention-sweep":
            return _sweep(config, trail, actor, args.dry_run)
        now = system_clock()
        try:
            if args.command == "hold":
                h = place_hold(db, args.order, reason=args.reason, actor=actor, audit=trail, now=now)
                print(f"legal hold placed on {h.work_order_id} by {h.placed_by} at {h.placed_at}: {h.reason}")
            else:
                h = release_hold(db, args.order, reason=args.reason, actor=actor, audit=trail, now=now)
                print(f"legal hold on {h.work_order_id} released by {h.released_by} at {h.released_at}: {args.reason}")
        except HoldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    finally:
        db.close()
