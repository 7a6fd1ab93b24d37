"""A central database with a million work orders, for bench/ui_list.py.

The file is made by the central's own code (`open_database`: WAL, the real migrations; the API's
and the console's tables beside them), then the orders are inserted in one transaction with
executemany. The distribution is a city's two years: ~50 sites, ~500 cameras (10 per site, one
box per site), orders spread over the two years with more of them by day; nearly all old orders
closed or rejected, the last days' still being worked, a few old ones forgotten (overdue).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.timefmt import utc_day, utc_iso

__all__ = ["NOW", "SITES", "Seeded", "seed_orders", "site_name"]

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z: "today" of the seeded city
SPAN_S = 2 * 365 * 86400.0
SITES = 50
CAMERAS_PER_SITE = 10
DEADLINE_S = 4 * 3600.0
BATCH = 20_000

# Orders older than a week: how they ended (the rest were forgotten and are overdue now).
_OLD = (("closed", 0.925), ("rejected", 0.06), ("verified", 0.005), ("registered", 0.005), ("dispatched", 0.005))
# Orders of the last week: still being worked, many already done.
_RECENT = (
    ("registered", 0.20),
    ("dispatched", 0.18),
    ("in_progress", 0.12),
    ("resolved", 0.08),
    ("verified", 0.04),
    ("reopened", 0.02),
    ("closed", 0.32),
    ("rejected", 0.04),
)
_CLOSED_LIKE = frozenset({"closed", "rejected", "verified"})
_COLUMNS = (
    "id", "event_code", "device_id", "site", "camera", "zone", "status", "opened_at", "due_at", "verified_at",
    "closed_at", "updated_at", "first_event_id", "last_event_id", "event_count", "detections", "source",
    "opened_ts", "clock_start_ts", "limit_s", "due_ts", "next_escalation_at", "registered_at", "dispatched_at",
    "resolved_at", "resolved_ts", "rejected_at", "reject_reason", "closed_ts", "assignee",
)  # fmt: skip


def site_name(n: int) -> str:
    return f"site-{n:02d}"


@dataclass(frozen=True)
class Seeded:
    count: int
    by_status: dict[str, int]
    by_site: dict[str, int]


class _IsoClock:
    """utc_iso and utc_day for many timestamps: the day's text is computed once per day (datetime is slow)."""

    def __init__(self) -> None:
        self._days: dict[int, tuple[str, str]] = {}

    def _day(self, ts: float) -> tuple[int, tuple[str, str]]:
        ms = int(ts * 1000)
        day = ms // 86_400_000
        text = self._days.get(day)
        if text is None:
            iso = utc_iso(day * 86400.0)
            text = self._days[day] = (iso[:11], utc_day(day * 86400.0))
        return ms - day * 86_400_000, text

    def iso(self, ts: float) -> str:
        ms, (prefix, _) = self._day(ts)
        s, ms = divmod(ms, 1000)
        m, s = divmod(s, 60)
        h, m = divmod(m, 60)
        return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"

    def day(self, ts: float) -> str:
        return self._day(ts)[1][1]


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for status, p in table:
        x -= p
        if x < 0:
            return status
    return table[-1][0]


def _opened_times(rng: random.Random, count: int) -> list[float]:
    """`count` times over the two years before NOW, denser by day (07:00-19:00 local, UTC+8)."""
    times = []
    for _ in range(count):
        day = rng.random() * SPAN_S
        hour = rng.triangular(-1.0, 11.0, 3.0)  # UTC hours: 07:00-19:00 in UTC+8, peaking in the morning
        times.append(NOW - SPAN_S + (day // 86400) * 86400 + hour * 3600 + rng.random() * 3600)
    times.sort()
    return [t for t in times if t < NOW]


def _rows(rng: random.Random, count: int) -> Iterator[tuple[Any, ...]]:
    seq_of_day: dict[str, int] = {}
    clock = _IsoClock()
    utc_iso = clock.iso
    for opened in _opened_times(rng, count):
        day = clock.day(opened)
        seq = seq_of_day[day] = seq_of_day.get(day, 0) + 1
        s = rng.randrange(SITES)
        cam = s * CAMERAS_PER_SITE + rng.randrange(CAMERAS_PER_SITE)
        status = _pick(rng, _RECENT if NOW - opened < 7 * 86400 else _OLD)
        due = opened + DEADLINE_S
        done = opened + rng.uniform(0.5, 6.0) * 3600 if status in _CLOSED_LIKE or status == "resolved" else None
        stamp = utc_iso(done if done is not None else opened)
        yield (
            f"WO-{day}-{seq:06d}", "0102", f"box-{s:02d}", site_name(s), f"cam-{cam:03d}", "z1", status,
            utc_iso(opened), utc_iso(due),
            stamp if status in ("verified", "closed") else None,
            stamp if status == "closed" else None,
            stamp,
            f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016x}", rng.randint(1, 6), rng.randint(1, 4),
            "camera", opened, opened, DEADLINE_S, due,
            None if status in _CLOSED_LIKE or status == "resolved" else max(due, NOW),
            utc_iso(opened),
            utc_iso(opened + 600) if status not in ("registered", "rejected") else None,
            stamp if status in ("resolved", "verified", "closed") else None,
            done if status in ("resolved", "verified", "closed") else None,
            stamp if status == "rejected" else None,
            "false positive: a parked cart" if status == "rejected" else None,
            done if status == "closed" else None,
            f"crew-{s:02d}" if status not in ("registered", "rejected") else None,
        )  # fmt: skip


def seed_orders(db_path: Path, count: int, seed: int = 1) -> Seeded:
    """Insert about `count` orders into the (already migrated) database at `db_path`, in one transaction.

    The work_orders indexes are dropped for the insert and created again from their own SQL
    (sorting once is much faster than a million random index inserts); the schema ends as it was.
    """
    rng = random.Random(seed)
    conn = sqlite3.connect(str(db_path))
    try:
        # A bench file: a crash while seeding means seeding again.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'work_orders' AND sql IS NOT NULL"
        ).fetchall()
        sql = f"INSERT INTO work_orders ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        rows = _rows(rng, count)
        with conn:
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            while True:
                batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
                if not batch:
                    break
                conn.executemany(sql, batch)
            for _, index_sql in indexes:
                conn.execute(index_sql)
            conn.execute(
                "INSERT OR IGNORE INTO devices (device_id, site, online) VALUES "
                + ", ".join(f"('box-{s:02d}', '{site_name(s)}', 1)" for s in range(SITES))
            )
        conn.execute("PRAGMA journal_mode=WAL")  # as open_database leaves it
        by_status = dict(conn.execute("SELECT status, count(*) FROM work_orders GROUP BY status").fetchall())
        by_site = dict(conn.execute("SELECT site, count(*) FROM work_orders GROUP BY site").fetchall())
    finally:
        conn.close()
    return Seeded(sum(by_status.values()), by_status, by_site)
