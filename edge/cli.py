"""`garbagewatch edge ...`: make a device key, check a config, run the daemon."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import wire
from edge.config import ConfigError, load_edge_config
from edge.systemd import Heartbeat, Notifier, configure_logging

if TYPE_CHECKING:
    from edge.daemon import EdgeDaemon

__all__ = ["main"]

log = logging.getLogger(__name__)


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
    """Validate `path` against this box (key, TLS files, model); print a summary. Errors: exit 2."""
    config = load_edge_config(path, check_files=True)
    broker, tls = config.broker, config.broker.tls
    print(f"{path}: ok: device {config.device_id}, site {config.site}, {len(config.cameras)} camera(s)")
    for cam in config.cameras:
        masks = f", {len(cam.masks)} mask(s)" if cam.masks else ""
        print(f"  camera {cam.id}: zones {', '.join(z.name for z in cam.zones)}{masks}")
    print(f"  broker {broker.host}:{broker.port} " + (f"TLS (CA {tls.ca}, cert {tls.cert})" if tls else "without TLS"))
    print(f"  key {config.key_file} (key id {wire.DeviceKey.load(config.key_file).key_id})")
    print(f"  model {config.detector.model_path}{_model_choice(config.detector.model, config.detector.variant)}")
    print(f"  spool {config.spool.dir} (quota {config.spool.quota_mb} MB)")
    return 0


def _model_choice(model: Path | None, variant: str) -> str:
    """Why this model: said only when the box chose it (variant auto)."""
    if model is not None or variant != "auto":
        return ""
    from edge.detect.cpu_features import int8_support

    return f" (variant auto: {int8_support().reason})"


def _version() -> str:
    try:
        return importlib.metadata.version("garbagewatch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def run(path: Path, level: str) -> int:
    """Run the daemon until SIGTERM/SIGINT, speaking systemd's notify protocol when under systemd.

    READY=1 once every thread runs; then STATUS= and WATCHDOG=1 (only while all threads are alive)
    from this thread; on the signal STOPPING=1 and a drain of at most drain_timeout_seconds.
    Exit codes: 0 stopped; 1 could not start (systemd restarts it); 2 a bad config, key or model
    file, which a restart cannot fix (the unit's RestartPreventExitStatus=2).
    """
    configure_logging(level)
    notifier = Notifier.from_environment()
    stop = threading.Event()
    received: list[int] = []

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        config = load_edge_config(path, check_files=True)
    except ConfigError as exc:
        for line in str(exc).splitlines():  # one log line per error, each with file:line: key
            log.error("config: %s", line)
        notifier.notify(STATUS=f"bad config {path}: see the log")
        return 2
    from edge.daemon import EdgeDaemon  # heavy imports (onnxruntime, av) only when running

    try:
        daemon = EdgeDaemon(config, version=_version()).start()
    except ValueError as exc:  # a damaged key or model file: restarting will not help
        log.error("cannot start: %s", exc)
        notifier.notify(STATUS=f"cannot start: {exc}")
        return 2
    except Exception as exc:  # a full disk, no memory: say what, exit 1, systemd restarts us
        log.exception("cannot start: %s", exc)
        notifier.notify(STATUS=f"cannot start: {exc}")
        return 1
    heartbeat = Heartbeat(notifier, daemon.dead_threads, daemon.status_line)
    notifier.notify(READY=1)
    heartbeat.beat()
    while not stop.wait(heartbeat.tick_seconds):
        heartbeat.beat()
    return _drain(daemon, config.drain_timeout_seconds, notifier, heartbeat,
                  signal.Signals(received[0]).name if received else "stop")


def _drain(daemon: EdgeDaemon, timeout: float, notifier: Notifier, heartbeat: Heartbeat, why: str) -> int:
    """Stop reading, deliver what is spooled for up to `timeout` s, petting the watchdog meanwhile."""
    log.info("stopping (%s): draining the spool for up to %.0f s", why, timeout)
    notifier.notify(STOPPING=1, STATUS=f"stopping: draining the spool for up to {timeout:.0f} s")
    failed: list[BaseException] = []

    def _stop() -> None:
        try:
            daemon.stop(drain_timeout=timeout)
        except Exception as exc:
            log.exception("stopping failed: %s", exc)
            failed.append(exc)

    stopper = threading.Thread(target=_stop, name="stop")
    stopper.start()
    # systemd's TimeoutStopSec bounds the drain; the watchdog must not cut it short meanwhile.
    while stopper.is_alive():
        heartbeat.pet()
        stopper.join(heartbeat.tick_seconds)
    notifier.close()
    log.info("stopped")
    return 1 if failed else 0


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
