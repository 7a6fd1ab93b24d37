"""The console's pages on the real app over a real SQLite file: dashboard, the order list's
filters, total and pagination, the order page, languages, user management."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from console_seed import BULK, PASSWORD, ConsoleSeed, clone, csrf_of, seed_console, sign_in
from fastapi.testclient import TestClient

from central.console import ConsoleSettings, create_app

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("console-seed"))


class Site:
    def __init__(self, seed: ConsoleSeed, data_dir: Path, now: float) -> None:
        self.seed, self.data_dir, self.now = seed, data_dir, now
        settings = ConsoleSettings(cookie_secure="never", audit_status_ttl_s=0, due_soon_s=60 * 86400.0)
        self.app = create_app(seed.config(data_dir), settings=settings, clock=lambda: self.now)

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if who is not None:
            assert sign_in(c, who).status_code == 303
        return c

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        try:
            return list(conn.execute(query, params or []))
        finally:
            conn.close()


@pytest.fixture
def site(seed: ConsoleSeed, tmp_path: Path) -> Iterator[Site]:
    s = Site(seed, clone(seed, tmp_path / "central"), seed.orders["h264"].filed_at + 3600)
    with TestClient(s.app):
        yield s


def number(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*>\s*(\d+)\s*<', html)
    assert match, f"no #{element_id}"
    return int(match.group(1))


def order_ids(html: str) -> list[str]:
    return re.findall(r'<a class="order-link" href="/orders/([^"]+)"', html)


def test_dashboard_counts_and_cameras(site: Site) -> None:
    page = site.client("admin").get("/").text
    running = ("reported", "registered", "dispatched", "in_progress", "reopened")
    overdue = site.sql(f"SELECT count(*) FROM work_orders WHERE status IN {running} AND due_ts < ?", [site.now])[0][0]
    assert number(page, "count-open") == BULK + 3  # h264, h265, old_b and the bulk; 'closed' is closed
    assert number(page, "count-overdue") == overdue >= 1  # old_b is twenty days old
    assert number(page, "count-due-soon") == BULK + 3 - overdue  # the window is 60 days in this app
    rows = re.findall(r'<tr class="(online|offline)" data-device="([^"]+)" data-camera="([^"]*)"', page)
    assert sorted(rows) == [
        ("offline", "box-2", "cam-1"),
        ("online", "box-1", "cam-1"),
        ("online", "box-1", "cam-2"),
        ("online", "box-1", "cam-3"),
    ]
    # A supervisor counts only their sites' orders and sees only their sites' cameras.
    page = site.client("sup_b").get("/").text
    assert number(page, "count-open") == 1 and number(page, "count-overdue") == 1
    assert re.findall(r'data-device="([^"]+)"', page) == ["box-2"]


def test_order_list_filters_total_and_pagination(site: Site) -> None:
    c = site.client("admin")
    first = c.get("/orders")
    assert number(first.text, "total-count") == BULK + 4
    assert len(order_ids(first.text)) == 50 and 'id="pagination"' in first.text
    second = c.get("/orders", params={"page": 2})
    assert len(order_ids(second.text)) == BULK + 4 - 50
    assert not set(order_ids(first.text)) & set(order_ids(second.text))
    assert 'href="/orders?page=2"' in first.text
    orders = site.seed.orders
    today = datetime.fromtimestamp(orders["h264"].filed_at, TZ).date()
    cases: list[tuple[dict[str, str], set[str] | int]] = [
        ({"status": "closed"}, {orders["closed"].id}),
        ({"status": "open"}, BULK + 3),
        ({"site": "site-b"}, {orders["old_b"].id}),
        ({"camera": "cam-3"}, BULK),
        ({"camera": "cam-1"}, {orders["h264"].id, orders["closed"].id, orders["old_b"].id}),
        ({"site": "site-a", "camera": "cam-1"}, {orders["h264"].id, orders["closed"].id}),
        ({"date_from": str(today - timedelta(days=2))}, BULK + 3),
        ({"date_to": str(today - timedelta(days=10))}, {orders["old_b"].id}),
        ({"date_from": str(today), "date_to": str(today), "camera": "cam-2"}, {orders["h265"].id}),
        ({"overdue": "1", "site": "site-b"}, {orders["old_b"].id}),
    ]
    for params, expected in cases:
        page = c.get("/orders", params={**params, "page": "1"}).text
        total = number(page, "total-count")
        if isinstance(expected, int):
            assert total == expected, params
        else:
            assert total == len(expected) and set(order_ids(page)) == expected, params
    # Pagination links keep the filters.
    page = c.get("/orders", params={"camera": "cam-3"}).text
    assert 'href="/orders?camera=cam-3&amp;page=2"' in page
    # A supervisor's list holds only their sites, whatever the filter says.
    assert number(site.client("sup_b").get("/orders", params={"site": "site-a"}).text, "total-count") == 0
    for bad in (
        {"status": "bogus"},
        {"date_from": "2026-13-01"},
        {"date_from": "2026-01-02", "date_to": "2026-01-01"},
        {"page": "0"},
        {"site": "../x"},
        {"overdue": "maybe"},
    ):
        assert c.get("/orders", params=bad).status_code == 400, bad


def test_the_order_page_shows_evidence_integrity_deadline_timeline_and_forms(site: Site) -> None:
    order = site.seed.orders["h264"]
    c = site.client("sup_a")
    page = c.get(f"/orders/{order.id}").text
    assert f'<img id="snapshot" src="/evidence/{order.files["snapshot_boxes"]}"' in page
    assert re.search(rf'<video id="clip"[^>]*>\s*<source src="/evidence/{order.files["clip"]}/video"', page)
    assert 'id="deadline"' in page and 'id="after-snapshot"' not in page
    assert re.findall(r'<span class="integrity (\w+)"[^>]*>(\w+)</span>', page) == [("ok", "ok")] * 3
    assert re.search(r'id="audit-status"[^>]*>ok<', page)
    rows = site.sql("SELECT count(*) FROM audit_log WHERE subject IN (?, ?)", [order.id, f"order:{order.id}"])[0][0]
    timeline = re.search(r'<ol id="timeline">(.*?)</ol>', page, re.S)
    assert timeline and timeline.group(1).count("<li ") == rows >= 1
    assert 'data-action="order.register"' in page
    assert 'id="notifications"' in page
    for form in ("acknowledge", "dispatch", "extend", "resolve", "reject"):
        match = re.search(rf'<form id="{form}".*?</form>', page, re.S)
        assert match and 'name="csrf_token"' in match.group(0) and 'name="reason"' in match.group(0), form
    assert 'id="resolve-photo"' in page and 'id="export"' not in page  # supervisors do not export
    closed = c.get(f"/orders/{site.seed.orders['closed'].id}").text
    assert f'<img id="after-snapshot" src="/evidence/{site.seed.orders["closed"].files["after_snapshot"]}"' in closed
    assert '<form id="' not in closed.split('id="timeline"')[0].split("</header>")[1]  # nothing to do on a closed order


def test_a_changed_evidence_byte_and_an_edited_audit_row_show_as_failed(site: Site) -> None:
    order = site.seed.orders["h264"]
    clip = site.data_dir / "evidence" / order.files["clip"][:2] / order.files["clip"]
    clip.chmod(0o644)
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 1
    clip.write_bytes(bytes(data))
    site.sql("SELECT 1")
    conn = sqlite3.connect(site.data_dir / "garbagewatch.db")
    with conn:
        conn.execute(
            "UPDATE audit_log SET reason = 'nothing to see' WHERE subject = ? AND action = 'order.register'",
            [f"order:{order.id}"],
        )
    conn.close()
    page = site.client("auditor").get(f"/orders/{order.id}").text
    row = re.search(rf'<tr data-sha256="{order.files["clip"]}".*?</tr>', page, re.S)
    assert row and '<span class="integrity failed"' in row.group(0) and ">failed</span>" in row.group(0)
    assert "hashes to" in row.group(0)  # says what failed
    assert re.search(r'id="audit-status"[^>]*>failed<', page)
    assert "was edited" in page


def test_chinese_by_default_and_a_language_switch(site: Site) -> None:
    c = site.client()
    page = c.get("/login").text
    assert '<html lang="zh-CN">' in page and "用户名" in page
    r = c.get("/lang/en", params={"next": "/login"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = c.get("/login").text
    assert '<html lang="en">' in page and "Username" in page
    assert c.get("/lang/fr").status_code == 404
    for element in ('form id="login"', 'input id="username"', 'input id="password"', 'button id="login-submit"'):
        assert f"<{element}" in page
    assert 'name="viewport"' in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")


def test_an_admin_adds_a_user_sets_sites_and_the_user_signs_in(site: Site) -> None:
    admin = site.client("admin")
    page = admin.get("/admin/users").text
    assert 'id="add-user"' in page and "sup-a" in page
    r = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf_of(page),
            "username": "wang",
            "role": "supervisor",
            "sites": "site-a, site-b",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert site.sql("SELECT site FROM user_sites WHERE username = 'wang' ORDER BY site") == [("site-a",), ("site-b",)]
    r = admin.post(
        "/admin/users/wang/sites", data={"csrf_token": csrf_of(page), "sites": "site-b"}, follow_redirects=False
    )
    assert r.status_code == 303
    wang = site.client("wang")
    assert number(wang.get("/orders").text, "total-count") == 1
    actions = site.sql("SELECT actor, action FROM audit_log WHERE subject = 'user:wang' ORDER BY seq")
    assert actions[:2] == [("user:admin-1", "user.add"), ("user:admin-1", "user.sites")]
    bad = admin.post(
        "/admin/users",
        data={"csrf_token": csrf_of(page), "username": "li", "role": "supervisor", "sites": "", "password": "short"},
    )
    assert bad.status_code == 400 and "10" in bad.text
