"""How many work orders there are of each (site, status), kept exact by triggers on work_orders.

An order list shows its total. With a million orders, COUNT(*) over "every closed order" reads
~900,000 index entries (100-200 ms); this table answers any count whose filters are only statuses
and sites in well under a millisecond. The triggers run inside the writer's own transaction, so
the counts are exactly as committed, whoever writes (ingest, the case flow, the API, a migration).

    ensure_order_counts(db)                                    # idempotent; at start-up
    count_orders_by(db, statuses={"closed"}, sites=None)       # None: no filter on that column
    order_sites(db)                                            # every site with an order, sorted

A work_orders table rebuilt by a future migration loses its triggers; `ensure_order_counts` sees
them missing and fills the table again from work_orders.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlite_utils import Database

from central.store.transactions import immediate

__all__ = ["TRIGGERS", "count_orders_by", "ensure_order_counts", "order_sites"]

TRIGGERS = ("work_order_counts_insert", "work_order_counts_delete", "work_order_counts_update")

_TABLE = """CREATE TABLE IF NOT EXISTS work_order_counts (
    site TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (site, status)
) WITHOUT ROWID"""

_ADD = (
    "INSERT INTO work_order_counts (site, status, n) VALUES ({row}.site, {row}.status, 1)"
    " ON CONFLICT (site, status) DO UPDATE SET n = n + 1;"
)
_SUB = "UPDATE work_order_counts SET n = n - 1 WHERE site = {row}.site AND status = {row}.status;"

_TRIGGER_SQL = (
    f"CREATE TRIGGER IF NOT EXISTS work_order_counts_insert AFTER INSERT ON work_orders BEGIN"
    f" {_ADD.format(row='NEW')} END",
    f"CREATE TRIGGER IF NOT EXISTS work_order_counts_delete AFTER DELETE ON work_orders BEGIN"
    f" {_SUB.format(row='OLD')} END",
    # Most updates of an order (deadlines, escalation, assignee) change neither column: no work.
    "CREATE TRIGGER IF NOT EXISTS work_order_counts_update AFTER UPDATE OF site, status ON work_orders"
    " WHEN OLD.site IS NOT NEW.site OR OLD.status IS NOT NEW.status BEGIN"
    f" {_SUB.format(row='OLD')} {_ADD.format(row='NEW')} END",
)


def _present_triggers(db: Database) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'work_orders'")
    return {str(r[0]) for r in rows} & set(TRIGGERS)


def ensure_order_counts(db: Database) -> bool:
    """Create the table and its triggers if missing; return True when the counts were (re)built.

    Under the write lock (BEGIN IMMEDIATE): no order can be filed between counting and the
    triggers taking over.
    """
    if len(_present_triggers(db)) == len(TRIGGERS):  # the common start-up: nothing to write
        return False
    with immediate(db):
        if len(_present_triggers(db)) == len(TRIGGERS):  # another process did it meanwhile
            return False
        db.execute(_TABLE)
        db.execute("DELETE FROM work_order_counts")
        db.execute(
            "INSERT INTO work_order_counts (site, status, n) SELECT site, status, count(*) FROM work_orders"
            " GROUP BY site, status"
        )
        for sql in _TRIGGER_SQL:
            db.execute(sql)
    return True


def _in(column: str, values: Collection[str] | None) -> tuple[str, list[str]]:
    if values is None:
        return "1", []
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(sorted(values))]


def count_orders_by(db: Database, *, statuses: Collection[str] | None, sites: Collection[str] | None) -> int:
    """Orders whose status is one of `statuses` and site one of `sites` (None: any)."""
    status_sql, status_params = _in("status", statuses)
    site_sql, site_params = _in("site", sites)
    row = db.execute(
        f"SELECT coalesce(sum(n), 0) FROM work_order_counts WHERE {status_sql} AND {site_sql}",
        [*status_params, *site_params],
    ).fetchone()
    return int(row[0])


def order_sites(db: Database) -> list[str]:
    """Every site that has an order, sorted (SELECT DISTINCT site over a million orders takes most of a second)."""
    return [str(r[0]) for r in db.execute("SELECT DISTINCT site FROM work_order_counts WHERE n > 0 ORDER BY site")]
