"""Group commit on the WAL: commits that do not wait for the disk, and the fsyncs that make them durable."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlite_utils import Database

from central.store import durability
from central.store.database import open_database
from central.store.durability import FsyncAhead, commits_not_waiting, wal_path

FULL, NORMAL = 2, 1


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "gw.db")


def _synchronous(db: Database) -> int:
    return int(db.execute("PRAGMA synchronous").fetchone()[0])


def test_commits_inside_do_not_wait_and_the_setting_comes_back(db: Database) -> None:
    wal = wal_path(db)
    assert wal is not None and wal.endswith("gw.db-wal")
    with commits_not_waiting(db, wal) as not_waiting:
        assert not_waiting and _synchronous(db) == NORMAL
    assert _synchronous(db) == FULL


def test_fsync_ahead_runs_one_fsync_at_a_time_and_finish_fsyncs_once_more(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    release = threading.Event()

    def fsync_wal(wal: str | None) -> None:
        calls.append(threading.current_thread().name)
        if threading.current_thread().name == "central-fsync-ahead":
            release.wait(5)

    monkeypatch.setattr(durability, "fsync_wal", fsync_wal)
    ahead = FsyncAhead(wal_path(db))
    ahead.start()
    ahead.start()  # the first is still running: the next fsync will cover this commit too
    release.set()
    ahead.finish()
    assert calls == ["central-fsync-ahead", threading.current_thread().name]


def test_a_failed_fsync_ahead_is_raised_by_finish_even_if_the_last_one_succeeds(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a failed fsync Linux may have dropped the dirty pages: a later success proves nothing.
    def fsync_wal(wal: str | None) -> None:
        if threading.current_thread().name == "central-fsync-ahead":
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(durability, "fsync_wal", fsync_wal)
    ahead = FsyncAhead(wal_path(db))
    ahead.start()
    with pytest.raises(OSError, match="Input/output error"):
        ahead.finish()
    ahead.finish()  # reported once


def test_without_a_wal_there_is_nothing_to_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[bool] = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(True))
    ahead = FsyncAhead(None)
    ahead.start()
    ahead.finish()
    assert started == []
