"""Every console action on a real order, through the case flow, audited with actor and reason."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_seed import ConsoleSeed, clone, csrf_of, jpeg, seed_console, sign_in
from fastapi.testclient import TestClient

from central.console import ConsoleSettings, create_app


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("console-seed"))


class Desk:
    """A supervisor of site-a at the console, over a copy of the seed."""

    def __init__(self, seed: ConsoleSeed, data_dir: Path) -> None:
        self.seed, self.data_dir = seed, data_dir
        self.app = create_app(seed.config(data_dir), settings=ConsoleSettings(cookie_secure="never"))
        self.client = TestClient(self.app, raise_server_exceptions=False)
        assert sign_in(self.client, "sup_a").status_code == 303

    def act(self, order_id: str, action: str, files: dict[str, Any] | None = None, **form: str) -> Any:
        token = csrf_of(self.client.get(f"/orders/{order_id}").text)
        return self.client.post(
            f"/orders/{order_id}/{action}", data={"csrf_token": token, **form}, files=files, follow_redirects=False
        )

    def rows(self, order_id: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return [
                dict(r)
                for r in conn.execute(
                    "SELECT * FROM audit_log WHERE subject IN (?, ?) ORDER BY seq", [order_id, f"order:{order_id}"]
                )
            ]
        finally:
            conn.close()

    def order(self, order_id: str) -> dict[str, Any]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return dict(conn.execute("SELECT * FROM work_orders WHERE id = ?", [order_id]).fetchone())
        finally:
            conn.close()


@pytest.fixture
def desk(seed: ConsoleSeed, tmp_path: Path) -> Iterator[Desk]:
    d = Desk(seed, clone(seed, tmp_path / "central"))
    with TestClient(d.app):
        yield d


def new_rows(desk: Desk, order_id: str, before: int) -> list[tuple[str, str, str]]:
    return [(r["actor"], r["action"], r["reason"]) for r in desk.rows(order_id)[before:]]


def test_acknowledge_dispatch_reassign_extend_resolve_each_audited(desk: Desk) -> None:
    order = desk.seed.orders["h264"].id
    me = "user:sup-a"
    n = len(desk.rows(order))
    r = desk.act(order, "acknowledge", reason="seen it, on it")
    assert r.status_code == 303 and r.headers["location"] == f"/orders/{order}?done=acknowledge"
    assert new_rows(desk, order, n) == [(me, "order.acknowledge", "seen it, on it")]
    assert desk.order(order)["status"] == "registered"

    n = len(desk.rows(order))
    assert desk.act(order, "dispatch", assignee="crew-3", reason="nearest crew").status_code == 303
    assert desk.act(order, "dispatch", assignee="crew-7", reason="crew 3 is busy").status_code == 303
    assert new_rows(desk, order, n) == [
        (me, "order.dispatch", "nearest crew"),
        (me, "order.dispatch", "crew 3 is busy"),
    ]
    assert json.loads(desk.rows(order)[-1]["detail"])["assignee"] == "crew-7"
    assert desk.order(order)["assignee"] == "crew-7"

    due_before = desk.order(order)["due_ts"]
    n = len(desk.rows(order))
    assert desk.act(order, "extend", hours="3", reason="needs a truck").status_code == 303
    assert new_rows(desk, order, n) == [
        (me, "order.extension_request", "needs a truck"),
        (me, "order.extension_approve", "needs a truck"),
    ]
    assert desk.order(order)["due_ts"] > due_before

    n = len(desk.rows(order))
    photo = jpeg(99)
    r = desk.act(order, "resolve", reason="bags taken away", files={"photo": ("after.jpg", photo, "image/jpeg")})
    assert r.status_code == 303
    assert new_rows(desk, order, n) == [
        (me, "order.resolve", "bags taken away"),
        (me, "order.resolve_photo", "bags taken away"),
    ]
    assert desk.order(order)["status"] == "resolved"
    sha = json.loads(desk.rows(order)[-1]["detail"])["sha256"]
    page = desk.client.get(f"/orders/{order}?done=resolve").text
    assert f'<img class="resolve-photo" src="/evidence/{sha}"' in page
    assert re.search(rf'<tr data-sha256="{sha}".*?<span class="integrity ok"', page, re.S)
    assert desk.client.get(f"/evidence/{sha}").content == photo
    # The timeline on the page lists every one of those rows.
    timeline = re.search(r'<ol id="timeline">(.*?)</ol>', page, re.S)
    assert timeline and timeline.group(1).count("<li ") == len(desk.rows(order))


def test_reject_needs_a_reason_and_actions_the_state_forbids_are_refused(desk: Desk) -> None:
    order = desk.seed.orders["h265"].id
    desk.client.cookies.set("gw_lang", "en")
    r = desk.act(order, "reject", reason="  ")
    assert r.status_code == 400 and "A reason is required." in r.text
    assert desk.order(order)["status"] == "registered"
    n = len(desk.rows(order))
    assert desk.act(order, "reject", reason="a parked cart, not garbage").status_code == 303
    assert new_rows(desk, order, n) == [("user:sup-a", "order.reject", "a parked cart, not garbage")]
    assert desk.order(order)["reject_reason"] == "a parked cart, not garbage"
    r = desk.act(order, "dispatch", assignee="crew-1", reason="try")
    assert r.status_code == 409 and "Not possible" in r.text
    assert desk.act(order, "extend", hours="1000", reason="x").status_code == 400
    assert desk.act(order, "teleport", reason="x").status_code == 404
    closed = desk.seed.orders["closed"].id
    assert desk.act(closed, "resolve", reason="again").status_code == 409
