"""Serve the console and the API (one app) with uvicorn on a thread, beside the audit checkpoints.

    stack = ConsoleStack(config, host="127.0.0.1", port=0).start()   # port 0: any free port
    print(stack.url)
    stack.stop()

`garbagewatch central serve` runs this alone; `garbagewatch central run` beside the MQTT ingest.
The checkpoint publisher is the API's (central.api.commands.ApiStack, without its own server).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from central.api.commands import ApiStack
from central.config import CentralConfig
from central.console.app import create_console_app
from central.console.settings import ConsoleSettings, console_settings_of
from central.counters import Counters
from central.timefmt import Clock, system_clock

__all__ = ["ConsoleStack", "WebServer"]

log = logging.getLogger("central.console")


class WebServer:
    """uvicorn serving `app` on a thread; `start()` returns once the socket listens."""

    def __init__(self, app: FastAPI, host: str, port: int, *, forwarded_allow_ips: str | None = None) -> None:
        self.host = host
        # Bound here: port 0 gets a free port, and a port in use fails at once, in the caller.
        self._socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # the apps log their requests (the API's without api_key values)
            server_header=False,
            lifespan="on",
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> WebServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()


class ConsoleStack:
    """The console with the API behind it, and the audit checkpoint publisher, started and stopped together."""

    def __init__(
        self,
        config: CentralConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        settings: ConsoleSettings | None = None,
        clock: Clock = system_clock,
        counters: Counters | None = None,
        serve_web: bool = True,
        publish_checkpoints: bool = True,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        self.api = ApiStack(
            config,
            host=host,
            port=port,
            clock=clock,
            counters=counters,
            serve_api=False,
            publish_checkpoints=publish_checkpoints,
        )
        self.context = self.api.context
        self.server: WebServer | None = None
        if serve_web:
            app = create_console_app(self.context, settings or console_settings_of(config))
            api = self.context.settings
            self.server = WebServer(app, api.host, api.port, forwarded_allow_ips=forwarded_allow_ips)

    @property
    def url(self) -> str:
        return self.server.url if self.server is not None else ""

    def start(self) -> ConsoleStack:
        self.api.start()
        if self.server is not None:
            self.server.start()
            log.info("console and API listening on %s (API docs at %s/docs)", self.url, self.url)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.api.stop()
