"""`garbagewatch central ...`: run the service, list work orders."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from central.config import ConfigError, load_config
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
    orders = sub.add_parser("orders", help="print the work orders")
    orders.add_argument("--config", type=Path, required=True, help="central YAML config")
    orders.add_argument(
        "--status", choices=["open", "verified", "closed"], help="only orders with this status"
    )
    return p


def _run(config_path: Path, level: str) -> int:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    service = CentralService(config).start()
    try:
        stop.wait()
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
            return _run(args.config, args.log_level)
        return _orders(args.config, args.status)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
