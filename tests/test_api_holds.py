"""Legal holds and purged evidence through the JSON API, on the real app and a real SQLite file
holding camera orders filed over MQTT (tests/api_seed.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_seed import Api, Seed, api_on_copy, seed_camera_orders

from central.audit.chain import AuditTrail
from central.config import RetentionConfig
from central.evidence_store import ContentStore
from central.retention.sweep import SweepResult, sweep
from central.store.database import open_database

pytestmark = pytest.mark.e2e

DAY = 86400.0


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_camera_orders(tmp_path_factory.mktemp("seed"))


def close_order(api: Api, order_id: str) -> None:
    for action in ("verify", "close"):
        r = api.post("admin", f"/api/v1/orders/{order_id}/actions", json={"action": action})
        assert r.status_code == 200, r.text


def retention_sweep(api: Api, days_later: float) -> SweepResult:
    """The service's sweep, run now as if `days_later` days had passed (30 days' retention)."""
    db = open_database(api.data_dir / "garbagewatch.db")
    try:
        store = ContentStore(api.data_dir / "evidence")
        now = time.time() + days_later * DAY
        return sweep(db, store, RetentionConfig(evidence_days=30), now, audit=AuditTrail(db))
    finally:
        db.close()


@pytest.fixture
def api(seed: Seed, tmp_path: Path) -> Iterator[Api]:
    with api_on_copy(seed, tmp_path / "central") as (client, data_dir, tokens):
        yield Api(client, data_dir, seed, tokens)


def test_an_auditor_places_lists_and_releases_a_hold_each_audited(api: Api) -> None:
    order_a, order_b = api.seed.orders["site-a"].id, api.seed.orders["site-b"].id
    r = api.post("auditor", f"/api/v1/orders/{order_a}/hold", json={"reason": "complaint 2026-118"})
    assert r.status_code == 201, r.text
    hold = r.json()
    assert (hold["work_order_id"], hold["reason"], hold["placed_by"], hold["active"]) == (
        order_a,
        "complaint 2026-118",
        "token:auditor-1",
        True,
    )
    shown = api.get("sup_a", f"/api/v1/orders/{order_a}").json()["legal_hold"]
    assert shown == {"reason": "complaint 2026-118", "placed_by": "token:auditor-1", "placed_at": hold["placed_at"]}
    assert api.get("admin", f"/api/v1/orders/{order_b}").json()["legal_hold"] is None

    again = api.post("admin", f"/api/v1/orders/{order_a}/hold", json={"reason": "another"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_held"
    assert api.post("admin", f"/api/v1/orders/{order_b}/hold", json={"reason": "press enquiry"}).status_code == 201

    listed = {h["work_order_id"] for h in api.get("auditor", "/api/v1/holds").json()["holds"]}
    assert listed == {order_a, order_b}
    # A supervisor sees the holds of their sites only (site-b's order is not theirs to see).
    assert [h["work_order_id"] for h in api.get("sup_a", "/api/v1/holds").json()["holds"]] == [order_a]

    r = api.post("auditor", f"/api/v1/orders/{order_a}/hold/release", json={"reason": "case settled"})
    assert r.status_code == 200 and r.json()["released_by"] == "token:auditor-1" and not r.json()["active"]
    again = api.post("auditor", f"/api/v1/orders/{order_a}/hold/release", json={"reason": "case settled"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_held"
    assert [h["work_order_id"] for h in api.get("auditor", "/api/v1/holds").json()["holds"]] == [order_b]

    rows = api.audit("order.hold") + api.audit("order.hold.release")
    assert {(r["actor"], r["action"], r["subject"], r["reason"]) for r in rows} == {
        ("token:auditor-1", "order.hold", f"order:{order_a}", "complaint 2026-118"),
        ("token:admin-1", "order.hold", f"order:{order_b}", "press enquiry"),
        ("token:auditor-1", "order.hold.release", f"order:{order_a}", "case settled"),
    }


def test_supervisors_and_integrations_may_not_hold_and_a_hold_needs_a_reason_and_an_order(api: Api) -> None:
    order_a = api.seed.orders["site-a"].id
    for who in ("sup_a", "hotline"):
        for path in (f"/api/v1/orders/{order_a}/hold", f"/api/v1/orders/{order_a}/hold/release"):
            r = api.post(who, path, json={"reason": "because"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (who, path)
    denied = api.audit("access.denied")
    assert {(d["actor"], d["subject"]) for d in denied} == {
        ("token:sup-a", f"order:{order_a}"),
        ("token:hotline", f"order:{order_a}"),
    }
    assert api.get("hotline", "/api/v1/holds").status_code == 403
    assert api.post("admin", "/api/v1/orders/WO-20990101-000001/hold", json={"reason": "x"}).status_code == 404
    assert api.post("admin", f"/api/v1/orders/{order_a}/hold", json={"reason": ""}).status_code == 422
    assert api.post("admin", f"/api/v1/orders/{order_a}/hold", json={"reason": "   "}).status_code == 422
    assert api.audit("order.hold") == []


def test_a_purged_file_answers_410_with_its_date_and_a_held_orders_file_is_still_served(api: Api) -> None:
    a, b = api.seed.orders["site-a"], api.seed.orders["site-b"]
    close_order(api, a.id)
    close_order(api, b.id)
    assert api.post("auditor", f"/api/v1/orders/{b.id}/hold", json={"reason": "complaint"}).status_code == 201

    result = retention_sweep(api, days_later=31)
    assert result.purged == 2 and result.errors == 0  # site-a's clip and snapshot; site-b's are held

    r = api.get("auditor", f"/api/v1/evidence/{a.clip_sha256}")
    assert r.status_code == 410 and r.json()["error"]["code"] == "evidence_purged"
    meta = api.get("auditor", f"/api/v1/evidence/{a.clip_sha256}/meta").json()
    day = meta["purged_at"][:10]
    assert day in r.json()["error"]["message"]
    assert meta["purge_reason"].startswith(f"retention: 30 days after {a.id} closed ") and meta["download"] is None
    failed = api.audit("evidence.read.failed")
    assert [(f["actor"], f["subject"], f["reason"]) for f in failed] == [
        ("token:auditor-1", f"evidence:{a.clip_sha256}", "file purged under the retention policy")
    ]
    listed = {e["sha256"]: e for e in api.get("admin", f"/api/v1/orders/{a.id}").json()["evidence"]}
    assert listed[a.clip_sha256]["purged_at"] == meta["purged_at"] and listed[a.clip_sha256]["download"] is None

    assert api.get("auditor", f"/api/v1/evidence/{b.clip_sha256}").status_code == 200
    assert api.get("auditor", f"/api/v1/evidence/{b.clip_sha256}/meta").json()["purged_at"] is None
