"""Start a private Mosquitto broker on a free port (the demo's and the tests' broker).

It never touches a broker that is already running on the machine: it gets its own port,
config and persistence folder, so a test can kill -9 it and start it again on the same port.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from garbagewatch.devtools.ports import free_port, wait_for_port

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str:
    for cand in MOSQUITTO_CANDIDATES:
        path = shutil.which(cand)
        if path:
            return path
    raise FileNotFoundError("mosquitto is not installed: apt-get install mosquitto (the README's commands do it)")


class Mosquitto:
    """A broker process. `start()` and `kill()` may be called repeatedly; the port stays the same."""

    def __init__(self, workdir: Path, port: int | None = None, persistence: bool = True) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "max_packet_size 8388608",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "set_tcp_nodelay true",  # as configs/mosquitto/garbagewatch.conf (wire.sockets says why)
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "log_type error",
            "log_type warning",
            f"log_dest file {self.log}",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.proc and self.proc.poll() is None:
            return self
        self._write_conf()
        self.proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.kill()
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {log[-500:]}") from None
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
