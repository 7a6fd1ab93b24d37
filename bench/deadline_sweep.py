"""Deadline and escalation sweep over 100,000 open orders, on a real SQLite file (WAL, synchronous=FULL).

    python3 -m bench.deadline_sweep [--orders 100000] [--sites 200]

Seeds a temporary database with open camera orders spread over 200 sites (each with a
responsible person, a supervisor and a district lead, one notification channel each), their
clocks started over the last three working days (office hours 08:30-12:00 and 13:30-17:30,
Chinese holidays), 4 working hours each. Every order's escalation state is what a central
sweeping every 30 s would have left, so `next_escalation_at` is set as in production. Then it
times central.caseflow.sweep.sweep, which reads the due orders through the partial index,
plans their steps, queues the notices (grouped per person and site) and commits:

- steady: five consecutive sweeps 30 s apart (the service's rhythm); the median is reported;
- after_1h_outage: one sweep catching up an hour of missed steps;
- every_order (--every-order): one sweep with all orders due at once (a freshly migrated
  database, or days of downtime); it shows the cost per escalation step, not a periodic sweep.

The first line is `orders N sweep_ms X` for the steady sweep.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from central.caseflow import EscalationState, plan
from central.caseflow.flow import CaseFlow
from central.caseflow.sweep import sweep
from central.config import CentralConfig, ChannelConfig, NotifyConfig, PersonConfig, SiteConfig
from central.store import open_database
from central.timefmt import utc_iso

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=SH).timestamp()  # a Wednesday afternoon
ROLES = ("responsible", "supervisor", "district_lead")


def _config(data_dir: Path, sites: int) -> CentralConfig:
    people, site_cfgs = [], []
    for s in range(sites):
        roles = {}
        for role in ROLES:
            pid = f"{role[:3]}-{s}"
            people.append(PersonConfig(id=pid, channels=[ChannelConfig(url=f"json://127.0.0.1:9/{pid}")]))
            roles[role] = [pid]
        site_cfgs.append(SiteConfig(id=f"site-{s}", roles=roles))
    return CentralConfig(data_dir=data_dir, sites=site_cfgs, notify=NotifyConfig(people=people, group_s=300))


def _seed(flow: CaseFlow, db_path: Path, orders: int, sites: int, as_of: float | None, rng: random.Random) -> None:
    """Insert `orders` open orders whose escalation state is what a sweep at `as_of` left.

    `as_of=None`: nothing was ever swept and every order is due for a look (as after the migration).
    """
    rules = flow.rules.for_site("site-0")  # every site has the same city and ladder here
    cal = rules.calendar
    earliest = cal.subtract(NOW, 3 * 7.5 * 3600)
    db = open_database(db_path)
    rows = []
    for i in range(orders):
        start = rng.uniform(earliest, NOW - 60)
        due = cal.add(start, rules.limit_s)
        next_at: float | None
        if as_of is None:
            s, next_at = EscalationState(), start
        else:
            p = plan(
                due=due,
                clock_start=start,
                state=EscalationState(),
                now=max(as_of, start),
                policy=rules.escalation,
                calendar=cal,
            )
            s, next_at = p.state, p.next_at
        rows.append(
            (
                f"WO-20261118-{i:06d}",
                "0102",
                "box-1",
                f"site-{i % sites}",
                f"cam-{i % 7}",
                f"z{i}",
                "registered",
                utc_iso(start),
                utc_iso(due),
                utc_iso(start),
                f"e{i}",
                f"e{i}",
                1,
                1,
                start,
                start,
                rules.limit_s,
                due,
                s.level,
                int(s.reminded),
                s.repeats,
                next_at,
            )
        )
    with db.atomic():
        for table in ("work_orders", "order_history", "notifications", "notification_items", "notification_attempts"):
            db.conn.execute(f"DELETE FROM {table}")
        db.conn.executemany(
            "INSERT INTO work_orders (id, event_code, device_id, site, camera, zone, status, opened_at, due_at,"
            " updated_at, first_event_id, last_event_id, event_count, detections, opened_ts, clock_start_ts, limit_s,"
            " due_ts, escalation_level, reminded, escalation_repeats, next_escalation_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.close()


@dataclass(frozen=True)
class Timing:
    wall_ms: float
    cpu_ms: float  # this process's CPU time: what the sweep costs apart from fsync waits and other load
    due: int
    notices: int

    def line(self) -> str:
        return f"{self.due} due, {self.notices} notices queued, sweep_ms {self.wall_ms:.1f} (cpu_ms {self.cpu_ms:.1f})"


def _timed_sweep(flow: CaseFlow, db_path: Path, now: float) -> Timing:
    db = open_database(db_path)
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        result = sweep(db, flow, now)
        w1, c1 = time.perf_counter(), time.process_time()
        return Timing((w1 - w0) * 1000.0, (c1 - c0) * 1000.0, result.orders, result.notices)
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.deadline_sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every-order", action="store_true", help="also time a sweep with every order due at once")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gw-sweep-") as tmp:
        data = Path(tmp)
        flow = CaseFlow(_config(data, args.sites))
        db_path = data / "gw.db"

        t0 = time.perf_counter()
        _seed(flow, db_path, args.orders, args.sites, NOW - 30, random.Random(args.seed))
        seeded_s = time.perf_counter() - t0
        steady = [_timed_sweep(flow, db_path, NOW + 30 * k) for k in range(5)]
        print(f"orders {args.orders} sweep_ms {statistics.median(t.wall_ms for t in steady):.1f}")
        for k, t in enumerate(steady):
            print(f"steady sweep {k + 1} of 5 (30 s apart): {t.line()}")
        _seed(flow, db_path, args.orders, args.sites, NOW - 3600, random.Random(args.seed))
        print(f"after_1h_outage: {_timed_sweep(flow, db_path, NOW).line()}")
        if args.every_order:
            _seed(flow, db_path, args.orders, args.sites, None, random.Random(args.seed))
            print(f"every_order: {_timed_sweep(flow, db_path, NOW).line()}")
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"(seeding {args.orders} orders took {seeded_s:.1f} s; {os.cpu_count()} CPUs, load {load};"
            f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
