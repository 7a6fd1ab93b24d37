"""The JSON API on the real app and a real SQLite file holding camera orders filed over MQTT."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_seed import Api, Seed, api_on_copy, seed_camera_orders

from central.audit.checkpoints import issue_checkpoint, load_or_create_key
from central.cli import main as central_main
from central.store.database import open_database

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_camera_orders(tmp_path_factory.mktemp("seed"))


@pytest.fixture
def api(seed: Seed, tmp_path: Path) -> Iterator[Api]:
    with api_on_copy(seed, tmp_path / "central") as (client, data_dir, tokens):
        yield Api(client, data_dir, seed, tokens)


def test_every_route_but_health_and_docs_needs_a_token(api: Api) -> None:
    order = api.seed.orders["site-a"].id
    sha = api.seed.orders["site-a"].snapshot_sha256
    for path in (
        "/api/v1/me",
        "/api/v1/orders",
        f"/api/v1/orders/{order}",
        f"/api/v1/evidence/{sha}",
        f"/api/v1/evidence/{sha}/meta",
        "/api/v1/audit",
        "/api/v1/audit/export",
        "/api/v1/audit/checkpoint",
    ):
        r = api.client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthenticated"
        bad = api.client.get(path, headers={"Authorization": "Bearer gwt_000000000000_" + "0" * 64})
        assert bad.status_code == 401, path
    assert api.client.post(f"/api/v1/orders/{order}/actions", json={"action": "dispatch"}).status_code == 401
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert "/open311/v2/requests.json" in api.client.get("/openapi.json").json()["paths"]


def test_a_supervisor_sees_the_orders_of_their_sites_only(api: Api) -> None:
    a, b = api.seed.orders["site-a"], api.seed.orders["site-b"]
    everything = api.get("admin", "/api/v1/orders").json()["orders"]
    assert {(o["id"], o["site"], o["state"]) for o in everything} == {
        (a.id, "site-a", "registered"),
        (b.id, "site-b", "registered"),
    }
    mine = api.get("sup_a", "/api/v1/orders").json()["orders"]
    assert [o["id"] for o in mine] == [a.id]
    assert api.get("sup_a", "/api/v1/orders", params={"site": "site-b"}).json()["orders"] == []
    assert api.get("sup_a", f"/api/v1/orders/{b.id}").status_code == 404
    assert api.get("admin", "/api/v1/orders", params={"status": "closed"}).json()["orders"] == []
    assert api.get("admin", "/api/v1/orders", params={"status": "bogus"}).status_code == 422


def test_an_order_lists_its_evidence_and_the_actions_allowed_now(api: Api) -> None:
    a = api.seed.orders["site-a"]
    order = api.get("sup_a", f"/api/v1/orders/{a.id}").json()
    assert order["camera"] == "cam-1" and order["device_id"] == "box-1" and order["source"] == "camera"
    assert order["media_sha256"] == a.snapshot_sha256
    files = {e["sha256"]: e for e in order["evidence"]}
    assert set(files) == {a.snapshot_sha256, a.clip_sha256}
    assert files[a.clip_sha256]["media_type"] == "video/mp4" and not files[a.clip_sha256]["missing"]
    assert order["allowed_actions"] == ["dispatch", "resolve", "verify", "reject", "extend", "acknowledge"]
    assert api.get("auditor", f"/api/v1/orders/{a.id}").json()["allowed_actions"] == []


def test_reading_evidence_returns_its_bytes_and_is_audited_with_actor_and_sha256(api: Api) -> None:
    sha = api.seed.orders["site-a"].snapshot_sha256
    r = api.get("sup_a", f"/api/v1/evidence/{sha}")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == sha
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == f'attachment; filename="{sha}.jpg"'
    assert r.headers["x-content-type-options"] == "nosniff"
    reads = api.audit("evidence.read")
    assert [(x["actor"], x["subject"]) for x in reads] == [("token:sup-a", f"evidence:{sha}")]
    assert json.loads(reads[0]["detail"])["sha256"] == sha
    meta = api.get("auditor", f"/api/v1/evidence/{sha}/meta").json()
    assert meta["orders"] == [api.seed.orders["site-a"].id] and meta["role"] == "snapshot"


def test_evidence_ids_are_checked_before_anything_touches_the_disk(api: Api) -> None:
    sha = api.seed.orders["site-a"].snapshot_sha256
    assert api.get("admin", f"/api/v1/evidence/{sha.upper()}").json()["error"]["code"] == "invalid_sha256"
    assert api.get("admin", f"/api/v1/evidence/{sha[:-1]}").status_code == 400
    assert api.get("admin", "/api/v1/evidence/..%2F..%2Fgarbagewatch.db").status_code in (400, 404)
    assert api.get("admin", "/api/v1/evidence/" + "ab" * 32).status_code == 404  # well-formed, not recorded
    assert api.audit("evidence.read") == []


def test_evidence_of_another_site_is_not_found_and_the_attempt_is_audited(api: Api) -> None:
    sha = api.seed.orders["site-b"].snapshot_sha256
    assert api.get("sup_a", f"/api/v1/evidence/{sha}").status_code == 404
    denied = api.audit("evidence.read.denied")
    assert [(d["actor"], d["subject"]) for d in denied] == [("token:sup-a", f"evidence:{sha}")]
    assert api.audit("evidence.read") == []


def test_a_file_recorded_but_gone_from_the_store_is_410_and_audited(api: Api) -> None:
    sha = api.seed.orders["site-a"].clip_sha256
    path = api.data_dir / "evidence" / sha[:2] / sha
    path.chmod(0o644)
    path.unlink()
    r = api.get("admin", f"/api/v1/evidence/{sha}")
    assert r.status_code == 410 and r.json()["error"]["code"] == "evidence_missing"
    assert api.audit("evidence.read.failed")[0]["subject"] == f"evidence:{sha}"


def test_the_integration_role_has_no_access_to_the_orders_api(api: Api) -> None:
    r = api.get("hotline", "/api/v1/orders")
    assert r.status_code == 403 and "may not orders.read" in r.json()["error"]["message"]
    assert api.get("hotline", f"/api/v1/evidence/{api.seed.orders['site-a'].clip_sha256}").status_code == 403


def test_a_supervisor_moves_an_order_through_the_case_flow_and_each_step_is_audited(api: Api) -> None:
    order_id = api.seed.orders["site-a"].id
    steps = [("dispatch", "team 3"), ("start", ""), ("resolve", "bags collected"), ("verify", ""), ("close", "")]
    for action, reason in steps:
        body = {"action": action, "reason": reason, **({"assignee": "wang"} if action == "dispatch" else {})}
        r = api.post("sup_a", f"/api/v1/orders/{order_id}/actions", json=body)
        assert r.status_code == 200, r.json()
    order = api.get("sup_a", f"/api/v1/orders/{order_id}").json()
    assert order["state"] == "closed" and order["closed_at"] is not None
    rows = [r for r in api.audit() if r["subject"] == f"order:{order_id}"]
    assert [(r["actor"], r["action"], r["reason"]) for r in rows] == [
        ("camera:box-1/cam-1", "order.register", ""),  # ingest's case flow, through the same trail
        ("token:sup-a", "order.dispatch", "team 3"),
        ("token:sup-a", "order.start", ""),
        ("token:sup-a", "order.resolve", "bags collected"),
        ("token:sup-a", "order.verify", ""),
        ("token:sup-a", "order.close", ""),
    ]
    assert json.loads(rows[1]["detail"]) == {"from": "registered", "to": "dispatched", "assignee": "wang"}
    # Open311 reads it as closed, with the case-flow status in the notes.
    assert order["last_reason"] == "bags collected"


def test_a_move_the_case_flow_forbids_is_refused_with_the_allowed_ones(api: Api) -> None:
    order_id = api.seed.orders["site-a"].id
    before = api.audit()
    r = api.post("sup_a", f"/api/v1/orders/{order_id}/actions", json={"action": "close"})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        "cannot close an order in status 'registered' (allowed: dispatch, resolve, verify, reject)"
    )
    r = api.post("sup_a", f"/api/v1/orders/{order_id}/actions", json={"action": "reject"})
    assert r.status_code == 409 and "needs a reason" in r.json()["error"]["message"]
    r = api.post("sup_a", f"/api/v1/orders/{order_id}/actions", json={"action": "explode"})
    assert r.status_code == 409 and "unknown action" in r.json()["error"]["message"]
    other = api.seed.orders["site-b"].id
    assert api.post("sup_a", f"/api/v1/orders/{other}/actions", json={"action": "dispatch"}).status_code == 404
    assert api.audit() == before, "a refused move leaves no trace but the refusal"


def test_extend_adds_working_hours_through_the_case_flow_and_checks_them(api: Api) -> None:
    order_id = api.seed.orders["site-a"].id
    url = f"/api/v1/orders/{order_id}/actions"
    due_before = api.get("sup_a", f"/api/v1/orders/{order_id}").json()["due_at"]
    before = api.audit()
    r = api.post("sup_a", url, json={"action": "extend", "reason": "needs a truck"})
    assert r.status_code == 409 and "needs hours" in r.json()["error"]["message"]
    assert api.post("sup_a", url, json={"action": "extend", "reason": "x", "hours": 721}).status_code == 422
    assert api.post("sup_a", url, json={"action": "extend", "reason": "x", "hours": 0}).status_code == 422
    r = api.post("sup_a", url, json={"action": "extend", "hours": 2})
    assert r.status_code == 409 and "needs a reason" in r.json()["error"]["message"]
    assert api.audit() == before, "a refused extension leaves no trace"
    r = api.post("sup_a", url, json={"action": "extend", "reason": "needs a truck", "hours": 2})
    assert r.status_code == 200, r.json()
    assert r.json()["due_at"] > due_before and r.json()["state"] == "registered"
    rows = [(x["actor"], x["action"], x["subject"]) for x in api.audit()[len(before) :]]
    assert rows == [
        ("token:sup-a", "order.extension_request", f"order:{order_id}"),
        ("token:sup-a", "order.extension_approve", f"order:{order_id}"),
    ]
    api.post("sup_a", url, json={"action": "resolve", "reason": "done"})
    r = api.post("sup_a", url, json={"action": "extend", "reason": "more", "hours": 1})
    assert r.status_code == 409 and "no running deadline" in r.json()["error"]["message"]


def test_an_auditor_reads_and_exports_but_acts_on_nothing(api: Api) -> None:
    order_id = api.seed.orders["site-a"].id
    r = api.post("auditor", f"/api/v1/orders/{order_id}/actions", json={"action": "dispatch"})
    assert r.status_code == 403
    denied = api.audit("access.denied")
    assert denied[-1]["actor"] == "token:auditor-1" and json.loads(denied[-1]["detail"])["permission"] == "orders.act"
    assert api.get("auditor", "/api/v1/orders").status_code == 200
    assert api.get("sup_a", "/api/v1/audit").status_code == 403

    db = open_database(api.data_dir / "garbagewatch.db")
    issue_checkpoint(db, load_or_create_key(api.data_dir), 1_800_000_000.0)
    db.close()
    export = api.get("auditor", "/api/v1/audit/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in export.text.splitlines()]
    rows, checkpoint = lines[:-1], lines[-1]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1]["action"] == "audit.export" and rows[-1]["actor"] == "token:auditor-1"
    assert checkpoint["checkpoint"]["count"] == len(rows) - 1  # signed before the export was recorded
    page = api.get("auditor", "/api/v1/audit", params={"after_seq": 0, "limit": 2}).json()
    assert [r["seq"] for r in page["rows"]] == [1, 2] and page["next_after_seq"] == 2
    assert api.get("auditor", "/api/v1/audit/checkpoint").json()["public_key_pem"].startswith("-----BEGIN PUBLIC KEY")


def test_me_says_who_the_token_stands_for(api: Api) -> None:
    assert api.get("sup_a", "/api/v1/me").json()["actor"] == "token:sup-a"
    assert api.get("sup_a", "/api/v1/me").json()["sites"] == ["site-a"]
    assert api.get("auditor", "/api/v1/me").json()["sites"] is None


def test_ingest_and_api_rows_form_one_chain_that_verify_audit_accepts(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = api.seed.orders["site-b"].id
    api.post("admin", f"/api/v1/orders/{order_id}/actions", json={"action": "reject", "reason": "a parked cart"})
    api.get("auditor", f"/api/v1/evidence/{api.seed.orders['site-b'].clip_sha256}")
    db = open_database(api.data_dir / "garbagewatch.db")
    issue_checkpoint(db, load_or_create_key(api.data_dir), 1_800_000_000.0)
    db.close()
    config = tmp_path / "central.yaml"
    config.write_text(f"data_dir: {api.data_dir}\n")
    # verify-audit also reads the export file; the running central writes it, here the database copy suffices.
    (api.data_dir / "audit-checkpoints.jsonl").touch()
    capsys.readouterr()
    assert central_main(["verify-audit", "--config", str(config)]) == 0, capsys.readouterr().out
    actors = {r["actor"] for r in api.audit()}
    assert {"camera:box-1/cam-1", "camera:box-2/cam-1", "token:admin-1", "token:auditor-1"} <= actors
