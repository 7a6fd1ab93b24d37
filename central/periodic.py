"""A background thread that does one job at start, then every `interval_s`, or at once when woken.

The deadline sweep, the retention sweep and the notifier all run this way: a thread of the
service with its own database connection (opened in the thread, closed when it stops), that
must never die of a bad row or a locked file. (The notifier may instead run the same loop as the
main thread of a child process, `run()`, with multiprocessing's events for `wake` and `stop`.)
`rounds_for(db)` is called once the thread's connection is open and returns the function that
does one round (so what belongs to the connection, such as an audit hook, is made once); an
exception from a round is logged in one line, counted, and the next round comes at the next
interval as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlite_utils import Database

from central.store.database import open_database

__all__ = ["CounterSink", "EventLike", "PeriodicJob", "PeriodicThread"]


class CounterSink(Protocol):
    """central.counters.Counters, or the counts a notifier process shares with its parent."""

    def inc(self, name: str, by: int = 1) -> None: ...
    def snapshot(self) -> dict[str, int]: ...


class EventLike(Protocol):
    """threading.Event, or multiprocessing's Event when the loop runs in a process of its own."""

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class PeriodicThread:
    def __init__(
        self,
        name: str,
        db_path: Path,
        interval_s: float,
        rounds_for: Callable[[Database], Callable[[], None]],
        *,
        counters: CounterSink,
        error_counter: str,
        log: logging.Logger,
        wake: EventLike | None = None,
        stop: EventLike | None = None,
    ) -> None:
        self.name = name
        self.db_path = db_path
        self.interval_s = interval_s
        self._rounds_for = rounds_for
        self._counters = counters
        self._error_counter = error_counter
        self._log = log
        self._stop: EventLike = stop if stop is not None else threading.Event()
        self._wake: EventLike = wake if wake is not None else threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """False once `stop()` was called: a long round may check it between steps."""
        return not self._stop.is_set()

    def wake(self) -> None:
        """Run a round now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run(self) -> None:
        """The loop itself, in the calling thread (`start` runs it in a thread of its own), until stopped."""
        db: Database | None = None
        one_round: Callable[[], None] | None = None
        try:
            while not self._stop.is_set():
                # Cleared before the round: a wake() during the round makes the next wait return at once.
                self._wake.clear()
                try:
                    if db is None:
                        db = open_database(self.db_path)
                    if one_round is None:
                        one_round = self._rounds_for(db)
                    one_round()
                except Exception as exc:  # a bad row, a locked file, a full disk: log, count, go on
                    self._counters.inc(self._error_counter)
                    self._log.error(
                        "%s failed, next try in %.1f s: %s: %s", self.name, self.interval_s, type(exc).__name__, exc
                    )
                self._wake.wait(self.interval_s)
        finally:
            if db is not None:
                db.close()


class PeriodicJob:
    """Base of a job that a PeriodicThread runs (the sweeps, the notifier): its wake, start and stop.

    The subclass sets `self._periodic` in its __init__.
    """

    _periodic: PeriodicThread

    def wake(self) -> None:
        """Run a round now rather than at the next tick."""
        self._periodic.wake()

    def start(self) -> None:
        """Run the rounds in a thread of this process."""
        self._periodic.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._periodic.stop(timeout)
