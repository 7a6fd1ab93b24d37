"""The JSON API and the console act through one case flow: the same action on the same order leaves
the same order row, history, audit rows, extension rows and queued notices, whichever door it came in.

Two copies of one seed (real orders filed through ingest into the real audit trail), one app each
(the console with the API mounted behind it), one fixed clock: a supervisor of site-a acts at the
console in one copy and with an API token in the other. Only the actor's name differs
(`user:sup-a` against `token:sup-a`); it is the one thing the comparison maps.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_seed import ConsoleSeed, clone, csrf_of, seed_console, sign_in
from fastapi.testclient import TestClient

from central.audit.chain import AuditTrail
from central.auth.tokens import create_token
from central.config import CentralConfig, ChannelConfig, NotifyConfig, PersonConfig, SiteConfig
from central.console import ConsoleSettings, create_app
from central.store.database import open_database

pytestmark = pytest.mark.e2e

CONSOLE_ACTOR, API_ACTOR = "user:sup-a", "token:sup-a"


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("parity-seed"))


def config_for(seed: ConsoleSeed, data_dir: Path) -> CentralConfig:
    """The seed's devices, and people with channels, so that every status change queues notices."""
    people = [
        PersonConfig(id=p, channels=[ChannelConfig(url=f"json://localhost/{p}")]) for p in ("li", "crew-3", "wang")
    ]
    return CentralConfig(
        data_dir=data_dir,
        devices=seed.config(data_dir).devices,
        notify=NotifyConfig(people=people, roles={"supervisor": ["wang"]}),
        sites=[SiteConfig(id="site-a", roles={"responsible": ["li"]})],
    )


class Door:
    """One copy of the seed behind one app; `act` goes through the console or through the API."""

    def __init__(self, seed: ConsoleSeed, data_dir: Path, now: float, *, via_api: bool) -> None:
        self.data_dir, self.via_api = data_dir, via_api
        app = create_app(config_for(seed, data_dir), settings=ConsoleSettings(cookie_secure="never"), clock=lambda: now)
        self.client = TestClient(app, raise_server_exceptions=False)
        self.token = ""
        if via_api:
            db = open_database(data_dir / "garbagewatch.db")
            try:
                _, self.token = create_token(
                    db,
                    name="sup-a",
                    role="supervisor",
                    sites=["site-a"],
                    actor="cli:test",
                    audit=AuditTrail(db),
                    now=now,
                )
            finally:
                db.close()

    def act(self, order_id: str, action: str, reason: str, **extra: Any) -> None:
        if self.via_api:
            body = {"action": action, "reason": reason, **extra}
            r = self.client.post(
                f"/api/v1/orders/{order_id}/actions", json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
            assert r.status_code == 200, r.text
            return
        token = csrf_of(self.client.get(f"/orders/{order_id}").text)
        form = {"csrf_token": token, "reason": reason, **{k: str(v) for k, v in extra.items()}}
        r = self.client.post(f"/orders/{order_id}/{action}", data=form, follow_redirects=False)
        assert r.status_code == 303, r.text

    def sql(self, query: str, *params: object) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(query, params)]
        finally:
            conn.close()

    def trace(self, order_id: str) -> dict[str, Any]:
        """Everything an action leaves about the order, with the actor's name made the console's."""
        found = {
            "order": self.sql("SELECT * FROM work_orders WHERE id = ?", order_id),
            "history": self.sql(
                "SELECT at, actor, action, from_status, to_status, reason, detail FROM order_history"
                " WHERE work_order_id = ? ORDER BY id",
                order_id,
            ),
            "audit": self.sql(
                "SELECT at, actor, action, subject, reason, detail FROM audit_log WHERE subject IN (?, ?) ORDER BY seq",
                order_id,
                f"order:{order_id}",
            ),
            "extensions": self.sql("SELECT * FROM order_extensions WHERE work_order_id = ? ORDER BY id", order_id),
            "notices": self.sql(
                "SELECT dedupe_key, channel, recipient, subject, kind, title, body, created_ts FROM notification_items"
                " WHERE subject = ? ORDER BY id",
                order_id,
            ),
        }
        text = json.dumps(found, sort_keys=True).replace(API_ACTOR, CONSOLE_ACTOR)
        assert API_ACTOR not in text
        return dict(json.loads(text))


@pytest.fixture
def doors(seed: ConsoleSeed, tmp_path: Path) -> Iterator[tuple[Door, Door]]:
    now = time.time()
    console = Door(seed, clone(seed, tmp_path / "console"), now, via_api=False)
    api = Door(seed, clone(seed, tmp_path / "api"), now, via_api=True)
    with console.client, api.client:
        assert sign_in(console.client, "sup_a").status_code == 303
        yield console, api


STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("acknowledge", "on it", {}),
    ("dispatch", "nearest crew", {"assignee": "crew-3"}),
    ("dispatch", "crew 3 is busy", {"assignee": "wang"}),
    ("extend", "needs a truck", {"hours": 3}),
    ("resolve", "bags taken away", {}),
]


def test_an_api_action_leaves_exactly_what_the_same_console_action_leaves(
    seed: ConsoleSeed, doors: tuple[Door, Door]
) -> None:
    console, api = doors
    order_id = seed.orders["h264"].id
    assert console.trace(order_id) == api.trace(order_id)
    for action, reason, extra in STEPS:
        before = console.trace(order_id)
        console.act(order_id, action, reason, **extra)
        api.act(order_id, action, reason, **extra)
        after = console.trace(order_id)
        assert api.trace(order_id) == after, f"{action}: the API and the console differ"
        # Not equal by both doing nothing: each step recorded itself.
        assert len(after["history"]) > len(before["history"]) and len(after["audit"]) > len(before["audit"])
    trace = api.trace(order_id)
    order = trace["order"][0]
    assert (order["status"], order["assignee"], order["extension_s"]) == ("resolved", "wang", 3 * 3600.0)
    assert [e["status"] for e in trace["extensions"]] == ["approved"]
    assert [(a["action"], a["reason"]) for a in trace["audit"] if a["actor"] == CONSOLE_ACTOR] == [
        ("order.acknowledge", "on it"),
        ("order.dispatch", "nearest crew"),
        ("order.dispatch", "crew 3 is busy"),
        ("order.extension_request", "needs a truck"),
        ("order.extension_approve", "needs a truck"),
        ("order.resolve", "bags taken away"),
    ]
    heard = {(n["recipient"], n["kind"]) for n in trace["notices"]}
    assert {("crew-3", "dispatched"), ("wang", "dispatched"), ("wang", "extension_requested")} <= heard
    assert ("crew-3", "extension_decided") not in heard  # crew 3 was no longer the assignee


def test_the_deadline_moves_alike_and_a_rejection_is_recorded_alike(
    seed: ConsoleSeed, doors: tuple[Door, Door]
) -> None:
    console, api = doors
    order_id = seed.orders["h265"].id
    due_before = api.trace(order_id)["order"][0]["due_ts"]
    for door in doors:
        door.act(order_id, "extend", "waiting for the truck", hours=2)
    extended = api.trace(order_id)
    assert extended == console.trace(order_id)
    assert extended["order"][0]["due_ts"] > due_before
    approve = [a for a in extended["audit"] if a["action"] == "order.extension_approve"]
    assert json.loads(approve[0]["detail"])["due_at"] == extended["order"][0]["due_at"]
    for door in doors:
        door.act(order_id, "reject", "a parked cart, not garbage")
    rejected = api.trace(order_id)
    assert rejected == console.trace(order_id)
    assert rejected["order"][0]["reject_reason"] == "a parked cart, not garbage"
    assert ("li", "rejected") in {(n["recipient"], n["kind"]) for n in rejected["notices"]}


def test_every_row_about_an_order_names_it_order_colon_id(seed: ConsoleSeed, doors: tuple[Door, Door]) -> None:
    """Ingest's, the console's and the API's rows share one subject, so one query finds them all."""
    order_id = seed.orders["h264"].id
    for door in doors:
        door.act(order_id, "dispatch", "nearest crew", assignee="crew-3")
        door.act(order_id, "resolve", "bags taken away")
    for door in doors:
        rows = door.sql(
            "SELECT actor, action, subject FROM audit_log WHERE action LIKE 'order.%' AND subject LIKE ?",
            f"%{order_id}",
        )
        assert {r["subject"] for r in rows} == {f"order:{order_id}"}
        assert {r["action"] for r in rows} >= {"order.register", "order.dispatch", "order.resolve"}


def test_rows_written_under_the_bare_id_still_belong_to_the_order(seed: ConsoleSeed, doors: tuple[Door, Door]) -> None:
    """Rows from before the convention keep their bare-id subject (the chain hashes them as written):
    the console's timeline and its check of the rows, and the API's audit filter, take them as they are."""
    api = doors[1]
    order_id = seed.orders["h264"].id
    db = open_database(api.data_dir / "garbagewatch.db")
    try:
        old = AuditTrail(db).append("user:li", "order.acknowledge", order_id, "written before order:<id>", {})
    finally:
        db.close()
    api.act(order_id, "dispatch", "nearest crew", assignee="crew-3")
    headers = {"Authorization": f"Bearer {admin_token(api)}"}
    for asked in (f"order:{order_id}", order_id):
        rows = api.client.get("/api/v1/audit", params={"subject": asked, "limit": 1000}, headers=headers).json()["rows"]
        subjects = [(r["seq"], r["subject"]) for r in rows]
        assert (old.seq, order_id) in subjects and (rows[-1]["action"], rows[-1]["subject"]) == (
            "order.dispatch",
            f"order:{order_id}",
        ), asked
    assert sign_in(api.client, "admin").status_code == 303
    page = api.client.get(f"/orders/{order_id}").text
    timeline = re.search(r'<ol id="timeline">(.*?)</ol>', page, re.S)
    assert timeline and "written before order:&lt;id&gt;" in timeline.group(1)
    both = api.sql("SELECT count(*) AS n FROM audit_log WHERE subject IN (?, ?)", order_id, f"order:{order_id}")
    assert timeline.group(1).count("<li ") == both[0]["n"]
    assert 'data-state="failed"' not in page  # the appended row is part of an intact chain


def admin_token(door: Door) -> str:
    db = open_database(door.data_dir / "garbagewatch.db")
    try:
        _, text = create_token(
            db, name="admin-1", role="admin", actor="cli:test", audit=AuditTrail(db), now=time.time()
        )
    finally:
        db.close()
    return text
