"""A private RTSP server that plays MP4 files as live, looping cameras (the demo's and the tests' cameras).

The server is GStreamer's RTSP server driven by gst_rtsp_serve.py under the system Python, which has
the GStreamer bindings (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0); the project's virtualenv
usually cannot import gi, so it runs as a subprocess. Streams are sent as stored (H.264 or H.265, no
re-encoding), in real time, looping forever. `pause()` freezes the whole server (SIGSTOP), which to a
client looks like a camera that stopped answering; `resume()` lets it go on.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from garbagewatch.devtools.ports import free_port

__all__ = ["GI_PYTHON_ENV", "RtspServer", "find_gi_python"]

SERVE_SCRIPT = Path(__file__).with_name("gst_rtsp_serve.py")
GI_PYTHON_ENV = "GARBAGEWATCH_GI_PYTHON"
GI_PYTHON_CANDIDATES = ("/usr/bin/python3",)
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # same rule as the serve script


def find_gi_python() -> str:
    """The interpreter that runs the serve script: $GARBAGEWATCH_GI_PYTHON, else Debian's python3."""
    override = os.environ.get(GI_PYTHON_ENV)
    if override:
        return override
    for cand in GI_PYTHON_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(
        "no system python3 with GStreamer bindings: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
        f"(scripts/bootstrap.sh does it), or point {GI_PYTHON_ENV} at a python that can `import gi`"
    )


class RtspServer:
    """An RTSP server process serving `name -> mp4 file` mounts at rtsp://HOST:PORT/NAME.

    `start()`, `kill()` and `stop()` may be called repeatedly; the port stays the same.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        streams: Mapping[str, str | Path] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.host = host
        self.streams: dict[str, Path] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / "rtsp-server.log"
        for name, path in (streams or {}).items():
            self.add(name, path)

    def add(self, name: str, mp4_path: str | Path) -> str:
        """Serve `mp4_path` at /name and return its URL; a running server restarts to pick it up."""
        if not STREAM_NAME.match(name):
            raise ValueError(f"stream name {name!r}: use letters, digits, '-', '_', '.' (at most 64)")
        path = Path(mp4_path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"stream {name}: no such file {path}")
        self.streams[name] = path
        if self.running:
            self.stop()
            self.start()
        return self.url(name)

    def url(self, name: str) -> str:
        if name not in self.streams:
            raise KeyError(f"no stream named {name!r}; known: {sorted(self.streams)}")
        return f"rtsp://{self.host}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> RtspServer:
        """Start the server and wait until its port accepts connections."""
        if self.running:
            return self
        # -I: the script needs only gi and the stdlib; keep this process's PYTHON* settings out of it
        cmd = [find_gi_python(), "-I", str(SERVE_SCRIPT), "--port", str(self.port), "--address", self.host]
        for name, path in self.streams.items():
            cmd += ["--mount", f"{name}={path}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self.paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        code = self.proc.poll()
        self.kill()
        tail = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
        why = f"exited with code {code}" if code is not None else f"did not listen within {timeout:.0f} s"
        raise RuntimeError(f"RTSP server on port {self.port} {why}; log {self.log}:\n{tail}")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing more is sent or answered."""
        if self.running and self.proc and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.proc and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send `sig` (kill -9 by default) and reap; falls back to SIGKILL after `timeout`."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            if self.paused:
                proc.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self.proc = None
        self.paused = False

    def stop(self) -> None:
        self.kill(signal.SIGTERM, timeout=5.0)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
