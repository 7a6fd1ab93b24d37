"""`garbagewatch edge ...`: make a device key, check a config, run the daemon."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import wire
from edge.config import ConfigError, load_edge_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="garbagewatch edge", description="The edge daemon.")
    sub = p.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make this device's Ed25519 key pair")
    keygen.add_argument("--out", type=Path, required=True, help="folder for device.key (0600) and device.pub")
    check = sub.add_parser("check-config", help="validate a config file and print a summary")
    check.add_argument("config", type=Path)
    run = sub.add_parser("run", help="run the daemon until SIGINT/SIGTERM")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def keygen(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "device.key", out / "device.pub"
    if private.exists():
        print(f"{private} exists already: refusing to overwrite a device key", file=sys.stderr)
        return 2
    key = wire.DeviceKey.generate()
    key.save(private, public)
    print(f"private key {private} (keep it on this box)\npublic key  {public} (give it to the central)")
    print(f"key id      {key.key_id}")
    return 0


def check_config(path: Path) -> int:
    config = load_edge_config(path)
    print(f"{path}: ok: device {config.device_id}, site {config.site}, {len(config.cameras)} camera(s)")
    for cam in config.cameras:
        print(f"  camera {cam.id}: zones {', '.join(z.name for z in cam.zones)}")
    print(f"  model {config.detector.model_path}")
    if not config.key_file.exists():
        print(f"  warning: key file {config.key_file} does not exist yet (garbagewatch edge keygen)")
    return 0


def run(path: Path, level: str) -> int:
    from edge.daemon import EdgeDaemon  # heavy imports (onnxruntime, av) only when running

    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    config = load_edge_config(path)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    daemon = EdgeDaemon(config).start()
    try:
        stop.wait()
    finally:
        daemon.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            return keygen(args.out)
        if args.command == "check-config":
            return check_config(args.config)
        return run(args.config, args.log_level)
    except (ConfigError, wire.WireError) as exc:
        print(exc, file=sys.stderr)
        return 2
