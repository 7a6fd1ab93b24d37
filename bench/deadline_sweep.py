"""Deadline and escalation sweep over 100,000 open orders, on a real SQLite file (WAL, synchronous=FULL).

    python3 -m bench.deadline_sweep [--orders 100000] [--sites 200] [--every-order] [--baseline]

Seeds a temporary database with open camera orders spread over 200 sites (each with a
responsible person, a supervisor and a district lead, one notification channel each), their
clocks started over the last three working days (office hours 08:30-12:00 and 13:30-17:30,
Chinese holidays), 4 working hours each. Every order's escalation state is what a central
sweeping every 30 s would have left, so `next_escalation_at` is set as in production. Then it
times central.caseflow.sweep.sweep as the service runs it (its own connection, the hash-chained
audit trail `central.audit.AuditTrail` as its audit hook): it reads the due orders through the
partial index, plans their steps, queues the notices (grouped per person and site), writes
history and audit rows and commits:

- steady: five consecutive sweeps 30 s apart (the service's rhythm); the median is reported.
  The first of them is the 15:00 burst (orders filed overnight started their clocks at 08:30
  and reach a level together);
- after_1h_outage: one sweep catching up an hour of missed steps;
- every_order (--every-order): one sweep with all orders due at once (a freshly migrated
  database, or days of downtime); it shows the cost per escalation step, not a periodic sweep.

Each line gives the sweep's wall and CPU time, its write transactions and the longest time one
of them held the write lock (what ingest may have to wait). The service's WAL checkpointer
(central.store.wal_checkpointer) runs beside the sweep, as in the service, and its CPU counts in
the sweep's; what the WAL still holds when the sweep ends is then checkpointed and reported on
its own ("then WAL checkpoint"): the service's checkpointer does that within the next second.
--baseline also runs the sweep as it was before the rework (bench/_sweep_baseline.py) on the
same seeded state, right before ours, checks that both leave the same orders, history, audit and
outbox, and prints the ratios.

The first line is `orders N sweep_ms X` for the steady sweep.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bench._sweep_baseline import BaselineAuditTrail, baseline_sweep_orders
from central.audit import AuditTrail
from central.audit import ensure_schema as ensure_audit_schema
from central.caseflow import EscalationState, plan
from central.caseflow.flow import CaseFlow
from central.caseflow.sweep import SweepResult, sweep, sweep_cameras
from central.config import CentralConfig, ChannelConfig, NotifyConfig, PersonConfig, SiteConfig
from central.counters import Counters
from central.store import open_database
from central.store.wal_checkpointer import WalCheckpointer
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
    ensure_audit_schema(db)
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
        for table in (
            "work_orders",
            "order_history",
            "notifications",
            "notification_items",
            "notification_attempts",
            "audit_log",
        ):
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
    transactions: int
    hold_ms: float  # the longest write transaction (the old sweep does not time its own: 0)
    outcome: str  # digest of what the sweep left in the file (orders, history, audit, outbox)
    checkpoint_ms: float  # copying back what the WAL still held after the sweep (the checkpointer's work)

    def line(self) -> str:
        hold = f", longest write lock {self.hold_ms:.0f} ms" if self.hold_ms else ""
        return (
            f"{self.due} due, {self.notices} notices queued, sweep_ms {self.wall_ms:.1f} (cpu_ms {self.cpu_ms:.1f});"
            f" {self.transactions} transactions{hold}; then WAL checkpoint {self.checkpoint_ms:.0f} ms"
        )


def _ours(db: Database, flow: CaseFlow, now: float) -> SweepResult:
    return sweep(db, flow, now, audit=AuditTrail(db))


def _baseline(db: Database, flow: CaseFlow, now: float) -> SweepResult:
    result = baseline_sweep_orders(db, flow, now, audit=BaselineAuditTrail(db, time.time))
    result += sweep_cameras(db, flow, now)
    return result


SWEEPS: dict[str, Callable[[Database, CaseFlow, float], SweepResult]] = {"ours": _ours, "baseline": _baseline}


def _timed_sweep(flow: CaseFlow, db_path: Path, now: float, which: str = "ours") -> Timing:
    """The sweep with the service's WAL checkpointer beside it (its CPU counts in cpu_ms); then, untimed
    by wall_ms but reported, the checkpoint of what the WAL still holds, which the service's
    checkpointer does within a second."""
    db = open_database(db_path)
    checkpointer = WalCheckpointer(db_path, Counters())
    checkpointer.start()
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        r = SWEEPS[which](db, flow, now)
        w1, c1 = time.perf_counter(), time.process_time()
        checkpointer.stop()
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        checkpoint_ms = (time.perf_counter() - w1) * 1000.0
        hold = r.longest_hold_s * 1000.0
        return Timing(
            (w1 - w0) * 1000.0, (c1 - c0) * 1000.0, r.orders, r.notices, r.transactions, hold, _outcome(db),
            checkpoint_ms,
        )  # fmt: skip
    finally:
        checkpointer.stop()
        db.close()


def _outcome(db: Database) -> str:
    """What both sweeps must leave alike. Audit subjects differ on purpose (the old sweep wrote the
    bare order id, the convention is now `order:<id>`), so the audit rows are compared without them."""
    digest = hashlib.sha256()
    queries = (
        "SELECT id, escalation_level, reminded, escalation_repeats, next_escalation_at FROM work_orders ORDER BY id",
        "SELECT work_order_id, action, reason, detail FROM order_history ORDER BY id",
        "SELECT action, reason, detail FROM audit_log ORDER BY seq",
        # Per message, without ids: AUTOINCREMENT goes on counting after the bench empties the tables,
        # and which message's items come first depends on where a transaction ends.
        "SELECT n.recipient, n.group_key, i.dedupe_key, i.title, i.body FROM notification_items i"
        " JOIN notifications n ON n.id = i.notification_id ORDER BY n.recipient, n.group_key, n.id, i.id",
        "SELECT recipient, group_key, title, body, items, attachments FROM notifications"
        " ORDER BY recipient, group_key, id",
    )
    for sql in queries:
        for row in db.execute(sql):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()[:12]


def _compare(name: str, runs: dict[str, Timing]) -> None:
    for which, t in runs.items():
        print(f"{name} {which}: {t.line()}")
    if len(runs) == 2:
        ours, base = runs["ours"], runs["baseline"]
        same = "same outcome" if ours.outcome == base.outcome else "OUTCOMES DIFFER"
        print(
            f"{name} ratio baseline/ours: wall x{base.wall_ms / ours.wall_ms:.1f},"
            f" cpu x{base.cpu_ms / max(ours.cpu_ms, 0.001):.1f} ({same})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.deadline_sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every-order", action="store_true", help="also time a sweep with every order due at once")
    ap.add_argument("--baseline", action="store_true", help="also time the sweep as it was before, on the same state")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gw-sweep-") as tmp:
        data = Path(tmp)
        flow = CaseFlow(_config(data, args.sites))
        db_path = data / "gw.db"
        which = ("baseline", "ours") if args.baseline else ("ours",)

        def seeded(as_of: float | None) -> None:
            _seed(flow, db_path, args.orders, args.sites, as_of, random.Random(args.seed))

        t0 = time.perf_counter()
        seeded(NOW - 30)
        seeded_s = time.perf_counter() - t0
        steady: dict[str, list[Timing]] = {}
        for k, w in enumerate(which):
            if k:
                seeded(NOW - 30)
            steady[w] = [_timed_sweep(flow, db_path, NOW + 30 * i, w) for i in range(5)]
        print(f"orders {args.orders} sweep_ms {statistics.median(t.wall_ms for t in steady['ours']):.1f}")
        for i in range(5):
            _compare(f"steady sweep {i + 1} of 5 (30 s apart)", {w: steady[w][i] for w in which})
        runs: dict[str, Timing] = {}
        for w in which:
            seeded(NOW - 3600)
            runs[w] = _timed_sweep(flow, db_path, NOW, w)
        _compare("after_1h_outage", runs)
        if args.every_order:
            runs = {}
            for w in which:
                seeded(None)
                runs[w] = _timed_sweep(flow, db_path, NOW, w)
            _compare("every_order", runs)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"(seeding {args.orders} orders took {seeded_s:.1f} s; {os.cpu_count()} CPUs, load {load};"
            f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
