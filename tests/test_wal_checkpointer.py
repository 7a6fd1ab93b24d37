"""WAL checkpoints run on the service's own thread, not inside whichever commit crosses 1000 pages."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from central_edge import wait_for
from sqlite_utils import Database

from central import BrokerConfig, CentralConfig, CentralService
from central.counters import Counters
from central.store.database import BACKSTOP_PAGES, open_database
from central.store.wal_checkpointer import WalCheckpointer
from garbagewatch.devtools.mosquitto import Mosquitto

BLOB = 3000  # about one 4 KiB page per row


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Database]:
    db = open_database(db_path)
    db.execute("CREATE TABLE bulk (b BLOB)")
    yield db
    db.close()


def _write_pages(db: Database, rows: int) -> None:
    with db.conn:
        db.conn.executemany("INSERT INTO bulk (b) VALUES (randomblob(?))", [(BLOB,)] * rows)


def test_every_connection_keeps_sqlites_checkpoint_only_as_a_backstop(writer: Database) -> None:
    assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES


def test_a_commit_past_1000_pages_leaves_the_checkpoint_to_the_checkpointer(db_path: Path, writer: Database) -> None:
    main_before = os.path.getsize(db_path)
    _write_pages(writer, 1500)
    # The commit itself copied nothing back: the rows are only in the WAL.
    assert os.path.getsize(db_path) == main_before
    assert os.path.getsize(f"{db_path}-wal") > 1500 * BLOB

    counters = Counters()
    checkpointer = WalCheckpointer(db_path, counters, interval_s=0.02)
    checkpointer.start()
    try:
        wait_for(lambda: counters.get("wal_checkpoints") >= 1, what="a checkpoint")
        assert os.path.getsize(db_path) > 1500 * BLOB  # the rows were copied back into the file
        assert counters.get("wal_checkpoint_errors") == 0
    finally:
        checkpointer.stop()
    # Once checkpointed, the next writer starts the WAL over: its frames go at the file's start.
    _write_pages(writer, 1)
    assert writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] < 10


def test_a_round_with_nothing_new_copies_nothing(db_path: Path, writer: Database) -> None:
    counters = Counters()
    checkpointer = WalCheckpointer(db_path, counters)
    reader = open_database(db_path)
    try:
        _write_pages(writer, 10)
        assert checkpointer.run_once(reader) is True
        assert checkpointer.run_once(reader) is False  # the same frames, already copied back
        _write_pages(writer, 10)
        assert checkpointer.run_once(reader) is True
        assert counters.get("wal_checkpoints") == 2
    finally:
        reader.close()


def test_the_service_checkpoints_what_its_connections_write(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = CentralConfig(
        data_dir=tmp_path / "central", broker=BrokerConfig(port=mosquitto.port, client_id="central-wal")
    )
    service = CentralService(config).start()
    try:
        assert any(t.name == "central-wal-checkpoint" for t in threading.enumerate())
        db = open_database(config.db_path)
        try:
            db.execute("CREATE TABLE bulk (b BLOB)")
            _write_pages(db, 1100)
        finally:
            db.close()
        wait_for(lambda: service.counters.get("wal_checkpoints", 0) >= 1, what="the service's checkpoint")
    finally:
        service.stop()
    assert not any(t.name == "central-wal-checkpoint" for t in threading.enumerate())
