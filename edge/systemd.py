"""Running under systemd: the notify protocol, the watchdog, and log lines journald understands.

No package is needed: sd_notify(3) is a datagram of `KEY=value` lines sent to the AF_UNIX socket
named by $NOTIFY_SOCKET, and journald reads a `<N>` syslog-priority prefix off each line a
service writes to stderr (sd-daemon(3)). Outside systemd every call here is a no-op.

    notifier = Notifier.from_environment()
    notifier.notify(READY=1, STATUS="2/2 cameras connected")
    heartbeat = Heartbeat(notifier, daemon.dead_threads, daemon.status_line)
    while not stop.wait(heartbeat.tick_seconds):
        heartbeat.beat()                      # WATCHDOG=1 only while every thread is alive
    notifier.notify(STOPPING=1)
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TextIO

__all__ = [
    "Heartbeat",
    "JournalFormatter",
    "Notifier",
    "configure_logging",
    "journal_stream_is",
    "notify",
]

log = logging.getLogger(__name__)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class Notifier:
    """An sd_notify client; `enabled` is False (and every call a no-op) when not under systemd.

    `address` is $NOTIFY_SOCKET: a socket path, or '@name' for the abstract namespace.
    `watchdog_usec` is $WATCHDOG_USEC; the watchdog should be petted at half that interval.
    Not thread-safe: notify from one thread (the daemon's main thread does).
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None, *, send_timeout: float = 2.0) -> None:
        self.address: str | None = None
        if address and (address.startswith("/") or address.startswith("@")):
            self.address = "\0" + address[1:] if address.startswith("@") else address
        elif address:
            # vsock: and relative paths exist in newer systemd; we never get them from a unit file.
            log.warning("systemd: NOTIFY_SOCKET %r is not a socket path or @name; not notifying", address)
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._send_timeout = send_timeout
        self._sock: socket.socket | None = None
        self._failed = False  # log the first failed send only: one line, not one per heartbeat
        self.sent = 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for in this process's environment (or a disabled one)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        raw_usec, raw_pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        # WATCHDOG_PID names the process the watchdog is meant for: not us when inherited.
        if raw_usec and (not raw_pid or raw_pid == str(os.getpid())):
            try:
                usec = int(raw_usec)
            except ValueError:
                log.warning("systemd: WATCHDOG_USEC=%r is not a number; watchdog not petted", raw_usec)
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the timeout, as sd_watchdog_enabled(3) advises)."""
        if not self.enabled or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def notify(self, **fields: object) -> bool:
        """Send `KEY=value` fields in one datagram, e.g. notify(READY=1, STATUS="ok"); True if sent."""
        if self.address is None or not fields:
            return False
        # One line per field: a value's own newlines would start bogus fields, so they are flattened.
        lines = [f"{key}={' '.join(str(value).splitlines())}" for key, value in fields.items()]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A wedged receiver blocks a datagram send; give up instead of hanging the caller.
                self._sock.settimeout(self._send_timeout)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("systemd: cannot notify %s: %s", self.address.replace("\0", "@"), exc)
            self._failed = True
            return False
        self._failed = False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def notify(**fields: object) -> bool:
    """sd_notify for this process's environment: notify(READY=1); a no-op outside systemd."""
    notifier = Notifier.from_environment()
    try:
        return notifier.notify(**fields)
    finally:
        notifier.close()


class Heartbeat:
    """Pets the systemd watchdog while the daemon's threads are alive and keeps STATUS= current.

    Call `beat()` every `tick_seconds` from the main thread: a dead thread, or a main thread
    that stops beating, lets the watchdog expire and systemd restarts the service.
    `dead_threads()` names the threads that are not alive (empty when healthy).
    """

    def __init__(
        self,
        notifier: Notifier,
        dead_threads: Callable[[], list[str]],
        status: Callable[[], str],
        *,
        status_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self._dead_threads = dead_threads
        self._status = status
        self.status_interval = status_interval
        self._clock = clock
        self._next_status = float("-inf")
        self._last_status = ""
        self._dead: list[str] = []
        self.pets = 0
        self.withheld = 0  # beats on which the watchdog was not petted

    @property
    def tick_seconds(self) -> float:
        return min(self.notifier.watchdog_interval or self.status_interval, self.status_interval)

    def beat(self) -> bool:
        """Pet the watchdog if every thread is alive (True if petted); refresh STATUS= when due."""
        dead = self._dead_threads()
        if dead != self._dead:
            if dead:
                log.error("health: thread(s) not alive: %s; the systemd watchdog is no longer petted",
                          ", ".join(dead))
            else:
                log.info("health: all threads alive again")
            self._dead = dead
            self._next_status = float("-inf")  # say so in STATUS= now, not at the next interval
        now = self._clock()
        if self.notifier.enabled and now >= self._next_status:
            self._next_status = now + self.status_interval
            text = self._status_text() if not dead else f"unhealthy: {', '.join(dead)} not alive"
            if text != self._last_status and self.notifier.notify(STATUS=text):
                self._last_status = text
        if self.notifier.watchdog_interval is None:
            return False
        if dead:
            self.withheld += 1
            return False
        petted = self.notifier.notify(WATCHDOG=1)
        self.pets += petted
        return petted

    def _status_text(self) -> str:
        try:
            return self._status()
        except Exception as exc:  # a summary that cannot be made must not stop the heartbeat
            log.warning("health: cannot make the status line: %s", exc)
            return f"status unavailable: {exc}"

    def pet(self) -> bool:
        """Pet unconditionally: while a bounded shutdown (TimeoutStopSec) drains the spool."""
        if self.notifier.watchdog_interval is None:
            return False
        return self.notifier.notify(WATCHDOG=1)


# -- logging --------------------------------------------------------------------------------------

_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def _syslog_priority(levelno: int) -> int:
    return next((prio for level, prio in _PRIORITY if levelno >= level), 7)


def _one_line_exception(ei: ExcInfo) -> str:
    """`ValueError: boom (at rtsp.py:120 in _session < daemon.py:70 in _run)`: innermost frame first."""
    etype, value, tb = ei
    if etype is None:
        return ""
    frames = traceback.extract_tb(tb)[-6:][::-1]
    where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in frames)
    text = " ".join(traceback.format_exception_only(etype, value)[-1].split())
    return f"{text} (at {where})" if where else text


class JournalFormatter(logging.Formatter):
    """`<6>edge.daemon: message`: journald takes the priority from the prefix and stamps the time.

    One event is one line: embedded newlines are flattened and a traceback is folded onto the
    line, so `journalctl -p err` shows every error whole and nothing arrives as stray info lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}: {_one_line_exception(record.exc_info)}"
        text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
        return f"<{_syslog_priority(record.levelno)}>{record.name}: {text}"

    def formatException(self, ei: ExcInfo) -> str:
        return _one_line_exception(ei)


def journal_stream_is(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True if `stream` is the journal connection systemd set up ($JOURNAL_STREAM = 'dev:inode').

    Checking the device and inode, as systemd.exec(5) advises, keeps a redirected stderr
    (`... 2>file` in a unit's shell, or a child of the service) in the plain format.
    """
    env = os.environ if environ is None else environ
    raw = env.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in raw.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> bool:
    """Log to `stream` (stderr): journald's format under systemd, timestamped lines otherwise.

    Returns True when the journal format was chosen.
    """
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    journal = journal_stream_is(stream)
    if journal:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return journal
