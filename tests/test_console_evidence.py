"""Evidence over HTTP: range requests, the H.264 preview of an H.265 clip, every read audited;
the evidence bundle export, verified offline by `garbagewatch verify`, and a changed byte named."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from console_seed import ConsoleSeed, clone, seed_console, sign_in
from fastapi.testclient import TestClient

from central.console import ConsoleSettings, create_app
from garbagewatch.verify import main as verify_main
from garbagewatch.verify import verify_bundle
from wire.bundle import media_path


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("console-seed"))


class Site:
    def __init__(self, seed: ConsoleSeed, data_dir: Path) -> None:
        self.seed, self.data_dir = seed, data_dir
        self.app = create_app(seed.config(data_dir), settings=ConsoleSettings(cookie_secure="never"))

    def client(self, who: str) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        assert sign_in(c, who).status_code == 303
        return c

    def audit(self, action: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM audit_log WHERE action = ? ORDER BY seq", [action])]
        finally:
            conn.close()

    def stored(self, sha: str) -> Path:
        return self.data_dir / "evidence" / sha[:2] / sha


@pytest.fixture
def site(seed: ConsoleSeed, tmp_path: Path) -> Iterator[Site]:
    s = Site(seed, clone(seed, tmp_path / "central"))
    with TestClient(s.app):
        yield s


def codec_of(data: bytes) -> str:
    with av.open(io.BytesIO(data)) as container:
        return str(container.streams.video[0].codec_context.name)


def test_range_requests_get_206_and_every_read_is_audited(site: Site) -> None:
    sha = site.seed.orders["h264"].files["clip"]
    data = site.stored(sha).read_bytes()
    c = site.client("sup_a")
    r = c.get(f"/evidence/{sha}", headers={"Range": "bytes=100-299"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-299/{len(data)}"
    assert r.content == data[100:300]
    r = c.get(f"/evidence/{sha}/video", headers={"Range": "bytes=0-"})
    assert r.status_code == 206 and r.content == data  # H.264: the clip itself
    assert r.headers["accept-ranges"] == "bytes" and r.headers["content-type"] == "video/mp4"
    full = c.get(f"/evidence/{sha}")
    assert full.status_code == 200 and full.content == data and hashlib.sha256(full.content).hexdigest() == sha
    reads = site.audit("evidence.read")
    assert [(r["actor"], r["subject"]) for r in reads] == [("user:sup-a", f"evidence:{sha}")] * 3
    assert json.loads(reads[0]["detail"])["range"] == "bytes=100-299"


def test_an_h265_clip_plays_through_an_h264_preview_made_once(site: Site) -> None:
    sha = site.seed.orders["h265"].files["clip"]
    original = site.stored(sha).read_bytes()
    assert codec_of(original) == "hevc"
    c = site.client("sup_a")
    r = c.get(f"/evidence/{sha}/video")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert codec_of(r.content) == "h264"
    preview = site.data_dir / "previews" / sha[:2] / f"{sha}.h264.mp4"
    assert preview.read_bytes() == r.content
    made = preview.stat().st_mtime_ns
    part = c.get(f"/evidence/{sha}/video", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == r.content[:100]
    assert preview.stat().st_mtime_ns == made  # made once, then served from the cache
    assert site.stored(sha).read_bytes() == original  # the evidence itself is untouched
    assert c.get(f"/evidence/{sha}").content == original  # and still served as it is
    details = [json.loads(r["detail"]) for r in site.audit("evidence.read")]
    assert [d.get("preview") for d in details] == ["h264", "h264", None]
    snapshot = site.seed.orders["h265"].files["snapshot"]
    assert c.get(f"/evidence/{snapshot}/video").status_code == 404  # a photo has no video


def test_an_exported_bundle_verifies_offline_and_a_changed_byte_is_named(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = site.seed.orders["h264"]
    c = site.client("auditor")
    page = c.get(f"/orders/{order.id}").text
    assert f'<a id="export" class="button-link" href="/orders/{order.id}/export.zip"' in page
    r = c.get(f"/orders/{order.id}/export.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(r.content)
    device = site.seed.keys["box-1"].key_id
    central = json.loads(zipfile.ZipFile(bundle).read("audit/checkpoint.json"))["checkpoint"]["key_id"]
    verdict = verify_bundle(bundle, device, central)
    assert verdict.passed, verdict.failures
    assert verify_main([str(bundle), "--device-key", device]) == 0
    assert capsys.readouterr().out.rstrip().endswith("VERIFIED")
    # The export is audited, with the sha256 of the bundle handed out.
    (started,), (done,) = site.audit("order.export"), site.audit("order.exported")
    assert started["actor"] == done["actor"] == "user:auditor-1"
    assert json.loads(done["detail"])["bundle_sha256"] == hashlib.sha256(r.content).hexdigest()
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        rows = [json.loads(line) for line in zf.read("audit/rows.jsonl").decode().splitlines()]
        index = json.loads(zf.read("bundle.json"))
    clip = media_path(order.files["clip"], "video/mp4")
    assert {clip, "device/public_key.pem", "audit/checkpoint.json", "SHA256SUMS"} <= names
    assert "order.export" in {r["action"] for r in rows if r["seq"] in index["audit"]["order_rows"]}
    # Another device's fingerprint is refused.
    assert not verify_bundle(bundle, site.seed.keys["box-2"].key_id).passed
    # One changed byte of the clip is named.
    with zipfile.ZipFile(bundle) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    data = bytearray(members[clip])
    data[len(data) // 2] ^= 0x01
    members[clip] = bytes(data)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    failures = verify_bundle(tampered, device).failures
    assert f"{clip}: content differs from the signed manifest's sha256/size (the clip was changed)" in failures
    assert f"{clip}: sha256 differs from SHA256SUMS (the file was changed)" in failures
    assert verify_main([str(tampered), "--device-key", device]) == 1


def test_a_closed_orders_bundle_carries_both_events_and_an_edited_row_is_caught(site: Site, tmp_path: Path) -> None:
    order = site.seed.orders["closed"]
    r = site.client("admin").get(f"/orders/{order.id}/export.zip")
    assert r.status_code == 200
    bundle = tmp_path / "closed.zip"
    bundle.write_bytes(r.content)
    with zipfile.ZipFile(bundle) as zf:
        index = json.loads(zf.read("bundle.json"))
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    assert [e["kind"] for e in index["events"]] == ["confirmed", "cleared"]
    assert media_path(order.files["after_snapshot"], "image/jpeg") in members
    assert verify_bundle(bundle, site.seed.keys["box-1"].key_id).passed
    lines = members["audit/rows.jsonl"].decode().splitlines()
    first = json.loads(lines[0])
    first["reason"] = "rewritten"
    members["audit/rows.jsonl"] = ("\n".join([json.dumps(first), *lines[1:]]) + "\n").encode()
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    failures = verify_bundle(bundle, site.seed.keys["box-1"].key_id).failures
    assert f"audit/rows.jsonl line 1 (seq {first['seq']}): its hash does not match its content" in failures
