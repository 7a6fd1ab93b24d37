"""The notifier in a process of its own: Apprise's work never competes with ingest for the GIL.

Sending a notification is mostly Python (Apprise builds the message, `requests` opens a
connection and parses the answer): a few milliseconds per message that, in the service's own
process, the ingest thread and paho's network thread would wait for, since one interpreter runs
one thread's Python at a time. The notifier needs nothing from the service's memory (it reads
the outbox from SQLite, with its own connection), so it runs as a child process
(`notify.process`, the default; see docs/central.md and docs/benchmarks.md for what it bought).

Between the two processes: a `wake` event (ingest and the sweep have queued something), a
`stop` event (the service is stopping; also set by the child itself on SIGTERM/SIGINT or when
its parent is gone), and the worker's counts in shared memory, which the service's `counters`
include. The child builds its sender itself: AppriseSender from the configured URLs, or
`sender_factory()` (a picklable callable) where the caller wants another.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

from central.config import NotifyConfig
from central.notify.sender import AppriseSender, Sender
from central.notify.worker import COUNTER_NAMES, NotificationWorker
from central.periodic import EventLike

__all__ = ["NotifierProcess"]

log = logging.getLogger("central.notify")

_PARENT_CHECK_S = 1.0


class SharedCounts:
    """The worker's counts (COUNTER_NAMES only) in shared memory: the child adds, the parent reads."""

    def __init__(self, values: SynchronizedArray[Any]) -> None:
        self._values = values

    def inc(self, name: str, by: int = 1) -> None:
        index = COUNTER_NAMES.index(name)  # ValueError for a name the worker does not declare
        with self._values.get_lock():
            self._values[index] += by

    def snapshot(self) -> dict[str, int]:
        with self._values.get_lock():
            counts = [int(self._values[i]) for i in range(len(COUNTER_NAMES))]
        return {name: int(n) for name, n in zip(COUNTER_NAMES, counts, strict=True) if n}


def _serve(
    db_path: Path,
    settings: NotifyConfig,
    evidence_dir: Path | None,
    wake: EventLike,
    stop: EventLike,
    ready: EventLike,
    counts: SynchronizedArray[Any],
    sender_factory: Callable[[], Sender] | None,
    owner: str,
    log_level: int,
    parent: int,
) -> None:
    """The child's main: the worker's loop until `stop`. `parent`: the service's pid, passed in
    (by the time this runs the parent may already be gone, and os.getppid() would name init)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[notifier]: %(message)s")
    if settings.process_nice:
        # Below the service in the CPU's queue: a notice can wait milliseconds, while an edge
        # waits for its ack (and holds its spool) until ingest has committed.
        os.nice(settings.process_nice)

    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # finish the message being sent, then leave (the parent stops us the same way)
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_parent() -> None:
        # A parent killed with -9 sets no event: do not outlive it.
        while not stop.wait(_PARENT_CHECK_S):
            if os.getppid() != parent:
                log.warning("the central service is gone: the notifier stops")
                on_signal(signal.SIGTERM, None)

    threading.Thread(target=watch_parent, name="central-notify-parent", daemon=True).start()
    sender = sender_factory() if sender_factory is not None else AppriseSender(settings.all_urls())
    worker = NotificationWorker(
        db_path, settings, sender, SharedCounts(counts), evidence_dir=evidence_dir, wake=wake, stop=stop, owner=owner
    )
    ready.set()  # imported and built: what comes now is the notifier's work
    worker.run()


class NotifierProcess:
    """NotificationWorker's start/wake/stop, with the worker in a child process."""

    def __init__(
        self,
        db_path: Path,
        settings: NotifyConfig,
        *,
        evidence_dir: Path | None = None,
        sender_factory: Callable[[], Sender] | None = None,
        owner: str = "notifier",
    ) -> None:
        """`owner`: the notifier's name in the outbox's claims (NotificationWorker's)."""
        ctx = mp.get_context("spawn")  # a fresh interpreter: no copy of the parent's threads or locks
        self._ctx = ctx
        self._wake = ctx.Event()
        self._stop = ctx.Event()
        self._ready = ctx.Event()
        self._counts = SharedCounts(ctx.Array("q", len(COUNTER_NAMES)))
        self._args = (
            db_path, settings, evidence_dir, self._wake, self._stop, self._ready, self._counts._values,
            sender_factory, owner,
        )  # fmt: skip
        self._process: Any = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once the child has started and built its sender (its imports take a second or so)."""
        return bool(self._ready.wait(timeout))

    def counts(self) -> dict[str, int]:
        """The worker's counts so far (notifications_sent, notification_retries, notifications_failed)."""
        return self._counts.snapshot()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._ready.clear()
        level = logging.getLogger().getEffectiveLevel()
        self._process = self._ctx.Process(
            target=_serve, args=(*self._args, level, os.getpid()), name="central-notify"
        )
        self._process.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None:
            return
        self._stop.set()
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():
            # Stuck in a send: a message claimed 'sending' goes out again at the next start (the outbox's rule).
            log.error("the notifier did not stop within %.0f s: terminating it", timeout)
            self._process.terminate()
            with contextlib.suppress(Exception):
                self._process.join(5)
        self._process = None
