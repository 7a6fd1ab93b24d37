"""The legal hold at the console, and purged evidence shown as purged, on the real app over a real
SQLite file seeded the production way (tests/console_seed.py)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
from console_seed import ConsoleSeed, clone, csrf_of, seed_console, sign_in
from fastapi.testclient import TestClient

from central.audit.chain import AuditTrail
from central.config import RetentionConfig
from central.console import ConsoleSettings, create_app
from central.evidence_store import ContentStore
from central.retention.sweep import sweep
from central.store.database import open_database

DAY = 86400.0


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("console-seed"))


def audit_rows(data_dir: Path, subject: str) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(data_dir / "garbagewatch.db")
    try:
        return list(
            conn.execute("SELECT actor, action, reason FROM audit_log WHERE subject = ? ORDER BY seq", [subject])
        )
    finally:
        conn.close()


def test_an_auditor_holds_an_order_at_the_console_and_purged_files_show_as_purged(
    seed: ConsoleSeed, tmp_path: Path
) -> None:
    data_dir = clone(seed, tmp_path / "central")
    app = create_app(seed.config(data_dir), settings=ConsoleSettings(cookie_secure="never", audit_status_ttl_s=0))
    closed = seed.orders["closed"]
    after = closed.files["after_snapshot"]
    with TestClient(app):
        auditor = TestClient(app, raise_server_exceptions=False)
        assert sign_in(auditor, "auditor").status_code == 303
        auditor.get("/lang/en", params={"next": "/"})
        page = auditor.get(f"/orders/{closed.id}").text
        assert 'id="legal-hold" class="muted" data-active="0"' in page
        r = auditor.post(
            f"/orders/{closed.id}/hold",
            data={"csrf_token": csrf_of(page), "reason": "complaint 2026-118"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == f"/orders/{closed.id}?done=hold"
        page = auditor.get(r.headers["location"]).text
        assert "The legal hold was placed" in page and "placed by user:auditor-1" in page
        assert '<form id="hold-release"' in page and "complaint 2026-118" in page

        supervisor = TestClient(app, raise_server_exceptions=False)
        assert sign_in(supervisor, "sup_a").status_code == 303
        seen = supervisor.get(f"/orders/{closed.id}").text
        assert 'data-active="1"' in seen and '<form id="hold' not in seen  # sees the hold; may not change it
        refused = supervisor.post(
            f"/orders/{closed.id}/hold/release", data={"csrf_token": csrf_of(seen), "reason": "x"}
        )
        assert refused.status_code == 403
        no_token = auditor.post(f"/orders/{closed.id}/hold/release", data={"reason": "settled"})
        assert no_token.status_code == 403  # the CSRF token is required of auditors too

        r = auditor.post(
            f"/orders/{closed.id}/hold/release",
            data={"csrf_token": csrf_of(page), "reason": "case settled"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert [row for row in audit_rows(data_dir, f"order:{closed.id}") if row[1].startswith("order.hold")] == [
            ("user:auditor-1", "order.hold", "complaint 2026-118"),
            ("user:auditor-1", "order.hold.release", "case settled"),
        ]

        db = open_database(data_dir / "garbagewatch.db")
        try:  # a year on, the closed order's files go under a 30-day retention
            store = ContentStore(data_dir / "evidence")
            result = sweep(
                db, store, RetentionConfig(evidence_days=30), closed.filed_at + 365 * DAY, audit=AuditTrail(db)
            )
        finally:
            db.close()
        assert result.purged >= 1 and not store.has(after)
        page = auditor.get(f"/orders/{closed.id}").text
        assert '<img id="after-snapshot"' not in page
        assert re.search(
            r'<p id="after-snapshot" class="purged muted">purged on \d{4}-\d\d-\d\d \(retention\)</p>', page
        )
        row = re.search(rf'<tr data-sha256="{after}".*?</tr>', page, re.S)
        assert row and "purged on" in row.group(0) and "integrity failed" not in row.group(0)
        assert f'href="/evidence/{after}"' not in page  # no broken link
        gone = auditor.get(f"/evidence/{after}")
        assert gone.status_code == 410 and "purged on" in gone.text

        # The evidence bundle lists the file as purged (when, why) and carries its purge's audit row.
        bundle = zipfile.ZipFile(io.BytesIO(auditor.get(f"/orders/{closed.id}/export.zip").content))
        index = json.loads(bundle.read("bundle.json"))
        missing = {m["sha256"]: m for m in index["missing"]}
        assert missing[after]["purged_at"] and missing[after]["purge_reason"].startswith("retention: 30 days after")
        assert f"media/{after}.jpg" not in bundle.namelist()
        rows = [json.loads(line) for line in bundle.read("audit/rows.jsonl").decode().splitlines()]
        assert any(r["action"] == "evidence.purge" and r["subject"] == f"evidence:{after}" for r in rows)
