"""Serve the API with uvicorn on a thread of this process (beside the MQTT ingest), until stop()."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from central.api.app import create_app
from central.api.context import ApiContext

__all__ = ["ApiServer"]

log = logging.getLogger("central.api")


class ApiServer:
    """`start()` returns once the socket listens; `port` is the bound port (useful with port 0)."""

    def __init__(self, ctx: ApiContext, host: str, port: int) -> None:
        self.ctx = ctx
        self.host = host
        # Bound here, so port 0 gets a free port and a port in use fails at once, in the caller.
        self._socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            create_app(ctx),
            log_level="warning",
            access_log=False,  # our middleware logs requests without api_key values
            server_header=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> ApiServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)
        log.info("API listening on %s (docs at %s/docs)", self.url, self.url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()
