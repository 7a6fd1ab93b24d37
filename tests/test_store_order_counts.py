"""Counts of work orders by (site, status), kept by triggers: always what COUNT(*) says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from central.caseflow.states import Status
from central.console.queries import OPEN_FILTER, OrderFilter, count_orders
from central.store.database import open_database
from central.store.order_counts import TRIGGERS, count_orders_by, ensure_order_counts, order_sites

STATUSES = [s.value for s in Status]
SITES = ["site-a", "site-b", "site-c"]


def _insert(db: Database, order_id: str, site: str, status: str) -> None:
    db.execute(
        "INSERT INTO work_orders (id, event_code, device_id, site, camera, zone, status, opened_at, due_at,"
        " updated_at, first_event_id, last_event_id, event_count, detections) VALUES"
        " (?, '0102', 'box-1', ?, 'cam-1', 'z1', ?, '2027-01-01T00:00:00.000Z', '2027-01-01T04:00:00.000Z',"
        " '2027-01-01T00:00:00.000Z', 'e', 'e', 1, 1)",
        [order_id, site, status],
    )


def _truth(db: Database) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT site, status, count(*) FROM work_orders GROUP BY site, status")
    return {(site, status): n for site, status, n in rows}


def _kept(db: Database) -> dict[tuple[str, str], int]:
    return {(site, status): n for site, status, n in db.execute("SELECT site, status, n FROM work_order_counts") if n}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / "garbagewatch.db")
    yield database
    database.close()


def test_existing_orders_are_counted_when_the_triggers_are_made_and_only_then(db: Database) -> None:
    for n, (site, status) in enumerate([("site-a", "closed"), ("site-a", "closed"), ("site-b", "registered")]):
        _insert(db, f"WO-{n}", site, status)
    assert ensure_order_counts(db) is True
    assert _kept(db) == {("site-a", "closed"): 2, ("site-b", "registered"): 1}
    assert ensure_order_counts(db) is False  # already there: nothing rewritten
    assert count_orders_by(db, statuses=None, sites=None) == 3
    assert count_orders_by(db, statuses={"closed"}, sites=None) == 2
    assert count_orders_by(db, statuses={"closed", "registered"}, sites={"site-b"}) == 1
    assert count_orders_by(db, statuses=set(), sites=None) == 0
    assert order_sites(db) == ["site-a", "site-b"]


def test_a_work_orders_table_that_lost_its_triggers_is_counted_again(db: Database) -> None:
    ensure_order_counts(db)
    _insert(db, "WO-1", "site-a", "registered")
    db.execute(f"DROP TRIGGER {TRIGGERS[0]}")  # as a migration that rebuilds the table would
    _insert(db, "WO-2", "site-a", "registered")  # not counted: no trigger
    assert _kept(db) == {("site-a", "registered"): 1}
    assert ensure_order_counts(db) is True
    assert _kept(db) == _truth(db) == {("site-a", "registered"): 2}


operation = st.one_of(
    st.tuples(st.just("insert"), st.sampled_from(SITES), st.sampled_from(STATUSES)),
    st.tuples(st.just("status"), st.integers(0, 30), st.sampled_from(STATUSES)),
    st.tuples(st.just("site"), st.integers(0, 30), st.sampled_from(SITES)),
    st.tuples(st.just("touch"), st.integers(0, 30), st.just("")),  # a change of neither column
    st.tuples(st.just("delete"), st.integers(0, 30), st.just("")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, max_size=40), rollback_last=st.booleans())
def test_counts_follow_every_insert_update_and_delete(
    db: Database, ops: list[tuple[str, object, str]], rollback_last: bool
) -> None:
    db.execute("DELETE FROM work_orders")
    db.execute("DROP TABLE IF EXISTS work_order_counts")
    for name in TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    ensure_order_counts(db)
    for n, (kind, arg, value) in enumerate(ops):
        with db.atomic():
            ids = [str(r[0]) for r in db.execute("SELECT id FROM work_orders ORDER BY id")]
            target = ids[int(arg) % len(ids)] if ids and isinstance(arg, int) else None
            if kind == "insert":
                _insert(db, f"WO-{n:03d}", str(arg), value)
            elif target is not None and kind in ("status", "site"):
                db.execute(f"UPDATE work_orders SET {kind} = ? WHERE id = ?", [value, target])
            elif target is not None and kind == "touch":
                db.execute("UPDATE work_orders SET due_at = 'x', event_count = event_count + 1 WHERE id = ?", [target])
            elif target is not None:
                db.execute("DELETE FROM work_orders WHERE id = ?", [target])
    if rollback_last:  # a transaction that fails leaves the counts as they were
        before = _kept(db)
        with pytest.raises(RuntimeError), db.atomic():
            _insert(db, "WO-rolled-back", "site-a", "closed")
            raise RuntimeError("the filing failed")
        assert _kept(db) == before
    assert _kept(db) == _truth(db)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from([None, OPEN_FILTER, *STATUSES]),
    site=st.sampled_from([None, *SITES, "site-z"]),
    visible=st.sampled_from([None, frozenset(), frozenset({"site-a"}), frozenset({"site-b", "site-c"})]),
)
def test_the_console_total_is_what_count_star_says(
    db: Database, status: str | None, site: str | None, visible: frozenset[str] | None
) -> None:
    if not db.execute("SELECT 1 FROM work_orders LIMIT 1").fetchone():
        ensure_order_counts(db)
        for n in range(120):
            _insert(db, f"WO-{n:03d}", SITES[n % 3], STATUSES[(n * 7) % len(STATUSES)])
    f = OrderFilter(status=status, site=site)
    where, params = ["1"], []
    if status == OPEN_FILTER:
        where.append("status IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([s.value for s in Status if s.value not in ("verified", "closed", "rejected")]))
    elif status is not None:
        where.append("status = ?")
        params.append(status)
    if site is not None:
        where.append("site = ?")
        params.append(site)
    if visible is not None:
        where.append("site IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(visible)))
    expected = db.execute(f"SELECT count(*) FROM work_orders WHERE {' AND '.join(where)}", params).fetchone()[0]
    assert count_orders(db, f, visible, now=0.0, tz=ZoneInfo("UTC")) == expected
