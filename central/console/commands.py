"""`garbagewatch central serve`: the console and the API (one app) and the audit checkpoints, without ingest.

The `serve` arguments are the API's (central.api.commands.add_api_commands: --config, --host,
--port, --log-level); this runs them with the console in front.
"""

from __future__ import annotations

import argparse
import logging
import threading

from central.config import load_config
from central.console.stack import ConsoleStack

__all__ = ["run_serve_command"]


def run_serve_command(args: argparse.Namespace, stop: threading.Event) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    stack = ConsoleStack(config, host=args.host, port=args.port).start()
    try:
        stop.wait()
    finally:
        stack.stop()
    return 0
