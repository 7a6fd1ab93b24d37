"""What every request handler shares: the config, a pool of SQLite connections, the clock, counts.

Handlers run on a thread pool. A connection is lent to one request at a time (it may move
between pool threads, which sqlite3 allows with check_same_thread=False, never concurrently).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlite_utils import Database

from central.api.settings import ApiSettings
from central.audit.schema import ensure_schema as ensure_audit_schema
from central.auth.schema import ensure_schema as ensure_auth_schema
from central.caseflow.flow import CaseFlow
from central.config import CentralConfig
from central.counters import Counters
from central.evidence_store import ContentStore
from central.store.database import open_database
from central.timefmt import Clock, system_clock

__all__ = ["ApiContext", "ConnectionPool", "ensure_api_schema"]


def ensure_api_schema(db: Database) -> None:
    """Tables the API needs beside the store's: users, tokens, the audit trail, Open311 intake."""
    from central.api.orders_adapter import ensure_schema as ensure_intake_schema

    ensure_auth_schema(db)
    ensure_audit_schema(db)
    ensure_intake_schema(db)


class ConnectionPool:
    """Up to `size` connections, opened on demand; `connection()` blocks while all are lent."""

    def __init__(self, config: CentralConfig, size: int) -> None:
        self._config = config
        self._size = size
        self._idle: queue.LifoQueue[Database] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._all: list[Database] = []

    def _take(self) -> Database:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._opened < self._size:
                self._opened += 1
                db = open_database(self._config.db_path)
                self._all.append(db)
                return db
        return self._idle.get()

    @contextmanager
    def connection(self) -> Iterator[Database]:
        db = self._take()
        try:
            yield db
        finally:
            if db.conn.in_transaction:  # a handler that failed mid-transaction: do not lend it half-done
                db.conn.rollback()
            self._idle.put(db)

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
            self._opened = 0
            self._idle = queue.LifoQueue()


@dataclass
class ApiContext:
    config: CentralConfig
    settings: ApiSettings
    clock: Clock = system_clock
    counters: Counters = field(default_factory=Counters)
    pool: ConnectionPool = field(init=False)
    evidence: ContentStore = field(init=False)
    flow: CaseFlow = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ConnectionPool(self.config, self.settings.db_pool_size)
        self.evidence = ContentStore(self.config.evidence_dir)
        # Each request passes its own audit hook (its actor's trail on its connection).
        self.flow = CaseFlow(self.config, clock=self.clock)
        with self.pool.connection() as db:
            ensure_api_schema(db)
