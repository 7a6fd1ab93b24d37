"""`garbagewatch central serve`: the API and the audit checkpoints, without MQTT ingest.

`garbagewatch central run` starts the same two beside the ingest (see central/cli.py).
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from central.api.context import ApiContext
from central.api.server import ApiServer
from central.api.settings import api_settings_of, audit_settings_of
from central.audit.publisher import CheckpointPublisher
from central.config import CentralConfig, load_config
from central.counters import Counters
from central.timefmt import Clock, system_clock

__all__ = ["API_COMMANDS", "ApiStack", "add_api_arguments", "add_api_commands", "run_api_command"]

API_COMMANDS = ("serve",)


def add_api_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address the API listens on (default: config api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port of the API (default: config api.port, 8080)")


def add_api_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the JSON and Open311 API and publish audit checkpoints (no ingest)")
    p.add_argument("--config", type=Path, required=True, help="central YAML config")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_api_arguments(p)


class ApiStack:
    """The API server and the checkpoint publisher, started and stopped together."""

    def __init__(
        self,
        config: CentralConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Clock = system_clock,
        counters: Counters | None = None,
        serve_api: bool = True,
        publish_checkpoints: bool = True,
    ) -> None:
        settings = api_settings_of(config)
        if host is not None or port is not None:
            settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
        audit = audit_settings_of(config)
        self.counters = counters or Counters()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.context = ApiContext(config, settings, clock=clock, counters=self.counters)
        self.server = ApiServer(self.context, settings.host, settings.port) if serve_api else None
        self.publisher = (
            CheckpointPublisher(
                db_path=config.db_path,
                data_dir=config.data_dir,
                broker=config.broker,
                interval_s=audit.checkpoint_interval_s,
                clock=clock,
                counters=self.counters,
                topic=audit.checkpoint_topic,
            )
            if publish_checkpoints
            else None
        )

    def start(self) -> ApiStack:
        if self.publisher is not None:
            self.publisher.start()
        if self.server is not None:
            self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.publisher is not None:
            self.publisher.stop()


def run_api_command(args: argparse.Namespace, stop: threading.Event) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    stack = ApiStack(config, host=args.host, port=args.port).start()
    try:
        stop.wait()
    finally:
        stack.stop()
    return 0
