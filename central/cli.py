"""`garbagewatch central ...`: run the service (ingest, notifier, API, audit checkpoints), serve the
API alone, list work orders, manage devices, users and API tokens, verify the audit trail, place
legal holds and run the evidence retention sweep."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from central.api.commands import API_COMMANDS, add_api_arguments, add_api_commands
from central.audit.chain import AuditTrail
from central.audit.commands import AUDIT_COMMANDS, add_audit_commands, run_audit_command
from central.auth.commands import AUTH_COMMANDS, add_auth_commands, run_auth_command
from central.caseflow.states import Status
from central.config import ConfigError, load_config
from central.console.commands import run_serve_command
from central.console.stack import ConsoleStack
from central.devices.commands import DEVICE_COMMANDS, add_device_commands, run_device_command
from central.retention.commands import RETENTION_COMMANDS, add_retention_commands, run_retention_command
from central.service import CentralService
from central.store.database import open_database
from central.store.work_orders import list_work_orders

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="garbagewatch central", description="The central service.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="receive evidence, file work orders, notify (until SIGINT/SIGTERM)")
    run.add_argument("--config", type=Path, required=True, help="central YAML config")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--no-api", action="store_true", help="do not serve the API (checkpoints are still published)")
    add_api_arguments(run)  # --host, --port of the API
    orders = sub.add_parser("orders", help="print the work orders")
    orders.add_argument("--config", type=Path, required=True, help="central YAML config")
    orders.add_argument(
        "--status", choices=["open", *(str(s) for s in Status)],
        help="only orders with this status ('open': any status still being worked)",
    )
    add_device_commands(sub)  # enroll-device, revoke-device, devices
    add_api_commands(sub)  # serve
    add_auth_commands(sub)  # users ..., tokens ...
    add_audit_commands(sub)  # verify-audit
    add_retention_commands(sub)  # hold, release-hold, holds, retention-sweep
    return p


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    return stop


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    stop = _stop_on_signals()
    # The stack first: it creates the audit tables the service's audit hooks write to.
    # The console and the API behind it, as one app (central.console).
    stack = ConsoleStack(config, host=args.host, port=args.port, serve_web=not args.no_api)
    service = CentralService(config, audit_for=AuditTrail).start()
    try:
        stack.start()
        try:
            stop.wait()
        finally:
            stack.stop()
    finally:
        service.stop()
    return 0


def _orders(config_path: Path, status: str | None) -> int:
    config = load_config(config_path)
    db = open_database(config.db_path)
    try:
        rows = list_work_orders(db, status)
    finally:
        db.close()
    print(f"{'id':<20} {'status':<8} {'site/camera/zone':<36} {'opened (UTC)':<24} {'due (UTC)':<24} events")
    for r in rows:
        place = f"{r['site']}/{r['camera']}/{r['zone']}"
        print(
            f"{r['id']:<20} {r['status']:<8} {place:<36} {r['opened_at']:<24} {r['due_at']:<24} "
            f"{r['event_count']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command in API_COMMANDS:
            return run_serve_command(args, _stop_on_signals())
        if args.command in AUTH_COMMANDS:
            return run_auth_command(args)
        if args.command in AUDIT_COMMANDS:
            return run_audit_command(args)
        if args.command in DEVICE_COMMANDS:
            return run_device_command(args)
        if args.command in RETENTION_COMMANDS:
            return run_retention_command(args)
        return _orders(args.config, args.status)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
