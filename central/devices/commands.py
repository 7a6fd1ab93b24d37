"""`garbagewatch central enroll-device | revoke-device | devices`: the registry from the command line.

They work on the central's database while the service runs: the ingest reads the registry for
every message, so an enrolment or revocation applies to the next message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from central.config import load_config
from central.devices.registry import DeviceRegistry, EnrolledKey, EnrolmentError
from central.store.database import open_database
from wire.errors import WireError
from wire.signing import load_public_key

__all__ = ["DEVICE_COMMANDS", "add_device_commands", "run_device_command"]

DEVICE_COMMANDS = frozenset({"enroll-device", "revoke-device", "devices"})


def add_device_commands(sub: Any) -> None:
    """Add the three subcommands to `garbagewatch central`'s subparsers."""
    enroll = sub.add_parser("enroll-device", help="trust a device's Ed25519 public key")
    enroll.add_argument("--config", type=Path, required=True, help="central YAML config")
    enroll.add_argument("--device", required=True, help="the device id (its certificate's CN at the broker)")
    enroll.add_argument(
        "--public-key", type=Path, required=True, help="the device's device.pub (garbagewatch edge keygen)"
    )
    enroll.add_argument("--site", help="the only site this device may report for")
    revoke = sub.add_parser("revoke-device", help="stop trusting a device's key(s), for good")
    revoke.add_argument("--config", type=Path, required=True, help="central YAML config")
    revoke.add_argument("--device", required=True, help="the device id")
    revoke.add_argument("--key-id", help="only this key (ed25519:...); default: every active key of the device")
    revoke.add_argument("--reason", default="revoked by an operator", help="recorded with the revocation")
    devices = sub.add_parser("devices", help="print the enrolled device keys")
    devices.add_argument("--config", type=Path, required=True, help="central YAML config")


def _describe(k: EnrolledKey) -> str:
    state = f"revoked {k.revoked_at}: {k.reason}" if k.revoked else "active"
    return f"{k.device_id:<24} {k.key_id:<42} {k.site or '(any)':<16} {k.source:<7} {k.enrolled_at:<25} {state}"


def run_device_command(args: argparse.Namespace) -> int:
    """Run one of DEVICE_COMMANDS; 0 on success, 1 when the registry refuses (the reason is printed)."""
    config = load_config(args.config)
    db = open_database(config.db_path)
    try:
        registry = DeviceRegistry(db)
        if args.command == "enroll-device":
            try:
                key = load_public_key(args.public_key)
            except WireError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            k = registry.enroll(args.device, key, site=args.site)
            print(f"enrolled {k.device_id}: key {k.key_id}, site {k.site or '(any)'}")
        elif args.command == "revoke-device":
            for k in registry.revoke(args.device, args.reason, key_id=args.key_id):
                print(f"revoked {k.device_id}: key {k.key_id} at {k.revoked_at} ({k.reason})")
        else:
            print(f"{'device':<24} {'key id':<42} {'site':<16} {'source':<7} {'enrolled (UTC)':<25} state")
            for k in registry.all_keys():
                print(_describe(k))
        return 0
    except EnrolmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
