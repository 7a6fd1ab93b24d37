"""The console's work-order list over a million orders: the server-rendered page with its total count.

    python3 -m bench.ui_list [--orders 1000000] [--runs 20]    # last line: p95_ms X (target X <= 50)

1. A central data directory holding `--orders` work orders (bench/ui_list_seed.py: the central's
   own schema and migrations, the API's and the console's tables, ~50 sites, ~500 cameras, two
   years). Seeding takes a few minutes; the file is cached under bench/.cache, keyed by the
   count and a hash of the schema, and every run works on a fresh copy of it.
2. The console as it is deployed (central.console.create_app: the pages with the API behind
   them) on uvicorn, in its own process, on loopback.
3. An admin (who sees every site, so the largest lists) signs in through the login form. Then,
   over one keep-alive connection, GET /orders with each filter below, pages 1 and 100 (50 orders
   a page), `--runs` times each, round robin. A request's time is from sending it to the last
   byte of the page. Every page is checked: 200, the total count the database has, its rows.

Filters: status (a working status, every open status, and `closed`, which matches ~92% of all
orders), site, and status with site. Prints each case's median and p95, then the p95 over every
request as the last line.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing as mp
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench._common import CACHE_DIR, machine_line
from bench.ui_list_seed import NOW, seed_orders, site_name

__all__ = ["main"]

USER, PASSWORD = "bench-admin", "bench admin password"
SITE = site_name(7)
CASES: tuple[dict[str, str], ...] = (
    {"status": "registered"},
    {"status": "open"},
    {"status": "closed"},
    {"site": SITE},
    {"status": "registered", "site": SITE},
    {"status": "closed", "site": SITE},
)
PAGES = (1, 100)
_TOTAL = re.compile(rb'id="total-count">(\d+)<')
_ROW = re.compile(rb'<tr class="status-[a-z_]+[^"]*" data-id="')
_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


def _check(ok: bool, what: str) -> None:
    """A wrong page is a failed bench, not a fast one (and `python -O` keeps this check)."""
    if not ok:
        raise RuntimeError(what)


# -- the database ----------------------------------------------------------------------------------


def _prepare_schema(db_path: Path) -> None:
    """An empty central database exactly as the service and the console leave it."""
    from central.api.context import ensure_api_schema
    from central.console.schema import ensure_schema as ensure_console_schema
    from central.store.database import open_database

    db = open_database(db_path)
    try:
        ensure_api_schema(db)
        ensure_console_schema(db)
    finally:
        db.close()


def _schema_hash(workdir: Path) -> str:
    path = workdir / "empty.db"
    _prepare_schema(path)
    with sqlite3.connect(path) as conn:
        sql = sorted(str(r[0]) for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))
    conn.close()
    return hashlib.sha256("\n".join(sql).encode()).hexdigest()[:12]


def seeded_database(count: int, workdir: Path) -> Path:
    """The cached database with `count` orders (made now if missing or of another schema)."""
    cached = CACHE_DIR / f"ui-list-{count}-{_schema_hash(workdir)}.db"
    if cached.is_file():
        return cached
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in CACHE_DIR.glob(f"ui-list-{count}-*.db"):
        stale.unlink()
    tmp = cached.with_name(f".{cached.name}.tmp")
    tmp.unlink(missing_ok=True)
    _prepare_schema(tmp)
    started = time.monotonic()
    print(f"seeding {count} orders into {tmp} (once; then cached) ...", flush=True)
    seeded = seed_orders(tmp, count)
    print(f"seeded {seeded.count} orders in {time.monotonic() - started:.0f} s: {seeded.by_status}", flush=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.rename(cached)
    return cached


def _add_admin(data_dir: Path) -> None:
    from central.audit.chain import AuditTrail
    from central.auth.users import add_user
    from central.store.database import open_database

    db = open_database(data_dir / "garbagewatch.db")
    try:
        add_user(db, USER, "admin", PASSWORD, actor="cli:bench", audit=AuditTrail(db), now=time.time())
    finally:
        db.close()


def _expected_total(db_path: Path, case: dict[str, str]) -> int:
    from central.caseflow.states import OPEN_STATUSES

    where, params = ["1"], []
    status = case.get("status")
    if status == "open":
        statuses = sorted(s.value for s in OPEN_STATUSES)
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    elif status:
        where.append("status = ?")
        params.append(status)
    if "site" in case:
        where.append("site = ?")
        params.append(case["site"])
    with sqlite3.connect(db_path) as conn:
        total = int(conn.execute(f"SELECT count(*) FROM work_orders WHERE {' AND '.join(where)}", params).fetchone()[0])
    conn.close()
    return total


# -- the console in its own process ---------------------------------------------------------------


def _serve(data_dir: str, port: int) -> None:
    import logging

    import uvicorn

    from central.config import CentralConfig
    from central.console import create_app
    from central.timefmt import system_clock

    logging.basicConfig(level=logging.WARNING)
    # The seeded city's "now", so that the due/overdue marks on the pages are those of its day.
    offset = NOW - system_clock()
    app = create_app(CentralConfig(data_dir=Path(data_dir)), clock=lambda: system_clock() + offset)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


class Browserless:
    """One keep-alive HTTP connection with the session cookie, as a browser would hold it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for header in response.msg.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value in ('""', "") or "Max-Age=0" in header:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, data

    def sign_in(self) -> None:
        status, page = self.request("GET", "/login")
        token = _CSRF.search(page)
        _check(status == 200 and token is not None, f"GET /login answered {status}")
        assert token is not None
        form = urlencode({"csrf_token": token.group(1).decode(), "next": "/", "username": USER, "password": PASSWORD})
        status, _ = self.request("POST", "/login", form)
        _check(status == 303 and "gw_session" in self.cookies, f"sign-in as {USER} failed: HTTP {status}")


def _wait_until_serving(port: int, proc: mp.process.BaseProcess, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.is_alive():
            raise RuntimeError("the console process exited while starting")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the console did not answer on port {port} within {timeout_s:.0f} s")


# -- timing ---------------------------------------------------------------------------------------


@dataclass
class Case:
    params: dict[str, str]
    page: int
    total: int
    times_ms: list[float] = field(default_factory=list)

    @property
    def path(self) -> str:
        query = dict(self.params)
        if self.page > 1:
            query["page"] = str(self.page)
        return "/orders?" + urlencode(query)

    @property
    def rows(self) -> int:
        return max(0, min(50, self.total - (self.page - 1) * 50))


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def _fetch(client: Browserless, case: Case) -> float:
    started = time.perf_counter()
    status, page = client.request("GET", case.path)
    elapsed = (time.perf_counter() - started) * 1000
    _check(status == 200, f"{case.path}: HTTP {status}")
    found = _TOTAL.search(page)
    total = int(found.group(1)) if found else None
    _check(total == case.total, f"{case.path}: the page says {total} orders, the database {case.total}")
    rows = len(_ROW.findall(page))
    _check(rows == case.rows, f"{case.path}: {rows} rows, expected {case.rows}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.ui_list", description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=20, help="timed requests per case")
    args = ap.parse_args(argv)

    from garbagewatch.devtools.ports import free_port

    print(f"# {machine_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gw-ui-list-") as tmp:
        workdir = Path(tmp)
        cached = seeded_database(args.orders, workdir)
        data_dir = workdir / "central"
        data_dir.mkdir()
        db_path = data_dir / "garbagewatch.db"
        shutil.copyfile(cached, db_path)
        _add_admin(data_dir)
        cases = [Case(params, page, _expected_total(db_path, params)) for params in CASES for page in PAGES]
        port = free_port()
        proc = mp.get_context("spawn").Process(target=_serve, args=(str(data_dir), port), daemon=True)
        proc.start()
        try:
            _wait_until_serving(port, proc)
            client = Browserless(port)
            client.sign_in()
            for case in cases:  # warm up: the first read of each range comes from disk
                _fetch(client, case)
            for _ in range(args.runs):
                for case in cases:
                    case.times_ms.append(_fetch(client, case))
        finally:
            proc.terminate()
            proc.join(15)
    print(f"GET /orders as an admin (every site), {args.orders} orders, {args.runs} runs per case, ms:")
    print(f"  {'filter':38s} {'page':>4s} {'total':>8s} {'median':>7s} {'p95':>7s}")
    for case in cases:
        label = "&".join(f"{k}={v}" for k, v in case.params.items())
        print(
            f"  {label:38s} {case.page:4d} {case.total:8d} {statistics.median(case.times_ms):7.1f}"
            f" {p95(case.times_ms):7.1f}"
        )
    every = [t for case in cases for t in case.times_ms]
    print(
        f"all {len(every)} requests: median {statistics.median(every):.1f} ms, p95 {p95(every):.1f} ms (target <= 50)"
    )
    print(f"# at the end: {machine_line()}")
    print(f"p95_ms {p95(every):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
