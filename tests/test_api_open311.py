"""Open311 GeoReport v2 on the real app and a real SQLite file: read orders, file reports with photos."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_seed import Seed, clone, make_token, seed_camera_orders
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.api.context import ApiContext
from central.api.settings import ApiSettings
from central.config import CameraPlaceConfig, CentralConfig, SiteConfig

pytestmark = pytest.mark.e2e

# A real (tiny) JPEG and PNG: the magic bytes are what the API checks, the rest is what a phone sends.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
MAX_PHOTO = 64 * 1024


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_camera_orders(tmp_path_factory.mktemp("seed"))


@dataclass
class Open311:
    client: TestClient
    data_dir: Path
    seed: Seed
    keys: dict[str, str]

    def file(self, key: str = "hotline", files: Any = None, **fields: Any) -> Any:
        data = {"api_key": self.keys[key], "service_code": "0102", **fields}
        return self.client.post("/open311/v2/requests.json", data=data, files=files)

    def read(self, path: str, key: str = "hotline", **params: Any) -> Any:
        return self.client.get(f"/open311/v2/{path}", params={"api_key": self.keys[key], **params})

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def stored_files(self) -> list[Path]:
        return sorted(p for p in (self.data_dir / "evidence").rglob("*") if p.is_file())


@pytest.fixture
def o311(seed: Seed, tmp_path: Path) -> Iterator[Open311]:
    data_dir = clone(seed, tmp_path / "central")
    keys = {
        "hotline": make_token(data_dir, "hotline-12345", "integration"),
        "admin": make_token(data_dir, "admin-1", "admin"),
        "auditor": make_token(data_dir, "auditor-1", "auditor"),
    }
    settings = ApiSettings(max_photo_bytes=MAX_PHOTO, public_base_url="https://gw.example.cn")
    ctx = ApiContext(CentralConfig(data_dir=data_dir), settings)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Open311(client, data_dir, seed, keys)


def test_services_lists_exposed_garbage_under_0102(o311: Open311) -> None:
    r = o311.read("services.json")
    assert r.status_code == 200
    [service] = r.json()
    assert service["service_code"] == "0102" and "暴露垃圾" in service["service_name"]
    assert service["metadata"] is False and service["type"] == "realtime"


def test_reads_need_an_api_key_and_refusals_come_in_open311_shape(o311: Open311) -> None:
    r = o311.client.get("/open311/v2/services.json")
    assert r.status_code == 403 and r.json() == [{"code": 403, "description": "an API token is required"}]
    r = o311.client.get("/open311/v2/requests.json", params={"api_key": "nope"})
    assert r.status_code == 403 and r.json()[0]["description"] == "the API token is not valid"
    assert o311.read("requests/WO-19990101-000001.json").json() == [
        {"code": 404, "description": "no service request 'WO-19990101-000001'"}
    ]


def test_a_camera_order_reads_as_an_open_request_with_its_deadline(o311: Open311) -> None:
    a = o311.seed.orders["site-a"]
    [req] = o311.read(f"requests/{a.id}.json").json()
    order = o311.rows("SELECT * FROM work_orders WHERE id = ?", a.id)[0]
    assert req["service_request_id"] == a.id and req["service_code"] == "0102"
    assert req["status"] == "open" and req["status_notes"] == "registered"
    assert req["expected_datetime"] == order["due_at"] and req["requested_datetime"] == order["opened_at"]
    assert req["address"] == "site-a / cam-1 / z1"
    assert req["media_url"] is None, "an integration may not read evidence, so it gets no link to it"
    [as_admin] = o311.read(f"requests/{a.id}.json", key="admin").json()
    assert as_admin["media_url"] == f"https://gw.example.cn/api/v1/evidence/{a.snapshot_sha256}"


def test_a_hotline_files_a_report_with_a_photo_into_the_case_flow(o311: Open311) -> None:
    r = o311.file(
        lat="31.2304",
        long="121.4737",
        description="三袋垃圾在路边",
        address_string="人民路 12 号",
        email="resident@example.cn",
        files={"media": ("IMG_0001.HEIC", JPEG, "application/octet-stream")},
    )
    assert r.status_code == 200, r.json()
    [answer] = r.json()
    order_id = answer["service_request_id"]
    assert order_id.startswith("WO-") and set(answer) == {"service_request_id", "service_notice", "account_id"}

    [req] = o311.read(f"requests/{order_id}.json").json()
    assert req["status"] == "open" and req["status_notes"] == "reported"
    assert req["lat"] == 31.2304 and req["long"] == 121.4737 and req["address"] == "人民路 12 号"
    assert req["description"] == "三袋垃圾在路边" and req["expected_datetime"] > req["requested_datetime"]
    assert order_id in [x["service_request_id"] for x in o311.read("requests.json").json()]

    sha = hashlib.sha256(JPEG).hexdigest()
    stored = o311.data_dir / "evidence" / sha[:2] / sha
    assert stored.read_bytes() == JPEG
    [photo] = o311.rows("SELECT * FROM evidence_files WHERE sha256 = ?", sha)
    assert photo["media_type"] == "image/jpeg" and photo["role"] == "report_photo"  # sniffed, not the client's type
    [filed] = o311.rows("SELECT * FROM audit_log WHERE action = 'order.report'")
    [intake] = o311.rows("SELECT * FROM audit_log WHERE action = 'open311.request'")
    assert filed["actor"] == intake["actor"] == "token:hotline-12345"
    assert filed["subject"] == intake["subject"] == f"order:{order_id}"
    assert json.loads(intake["detail"])["photo_sha256"] == sha

    # The same order in the JSON API, with its photo, for a supervisor to register and dispatch.
    order = o311.client.get(
        f"/api/v1/orders/{order_id}", headers={"Authorization": f"Bearer {o311.keys['admin']}"}
    ).json()
    assert order["state"] == "reported" and order["source"] == "report"
    assert [e["sha256"] for e in order["evidence"]] == [sha]
    assert order["allowed_actions"] == ["register", "reject", "extend", "acknowledge"]


def test_a_report_is_filed_at_the_camera_that_covers_its_spot(seed: Seed, tmp_path: Path) -> None:
    data_dir = clone(seed, tmp_path / "central")
    hotline = make_token(data_dir, "hotline", "integration")
    sup_a = make_token(data_dir, "sup-a", "supervisor", sites=["site-a"])
    config = CentralConfig(
        data_dir=data_dir,
        sites=[
            SiteConfig(
                id="site-a", lat=31.2300, lon=121.4700, cameras={"cam-1": CameraPlaceConfig(lat=31.2304, lon=121.4737)}
            ),
            SiteConfig(id="site-b", lat=31.3000, lon=121.5000),
        ],
    )
    with TestClient(create_app(ApiContext(config, ApiSettings())), raise_server_exceptions=False) as client:

        def file(lat: str, long: str) -> str:
            r = client.post(
                "/open311/v2/requests.json", data={"api_key": hotline, "service_code": "0102", "lat": lat, "long": long}
            )
            assert r.status_code == 200, r.text
            return str(r.json()[0]["service_request_id"])

        near_cam = file("31.2305", "121.4738")  # about 15 m from cam-1
        near_b = file("31.3001", "121.5001")
        nowhere = file("30.0", "120.0")
        orders = {
            o["id"]: o
            for o in client.get("/api/v1/orders", headers={"Authorization": f"Bearer {sup_a}"}).json()["orders"]
        }
    assert orders[near_cam]["site"] == "site-a" and orders[near_cam]["camera"] == "cam-1"
    assert near_b not in orders and nowhere not in orders  # site-b's, and nobody's yet
    conn = sqlite3.connect(data_dir / "garbagewatch.db")
    sites = dict(conn.execute("SELECT id, site FROM work_orders WHERE id IN (?, ?)", (near_b, nowhere)).fetchall())
    conn.close()
    assert sites == {near_b: "site-b", nowhere: ""}


def test_a_report_with_an_address_and_no_photo_is_filed(o311: Open311) -> None:
    r = o311.file(address_string="解放路与中山路交叉口", description="")
    assert r.status_code == 200
    [req] = o311.read(f"requests/{r.json()[0]['service_request_id']}.json").json()
    assert req["lat"] is None and req["address"] == "解放路与中山路交叉口" and req["media_url"] is None


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({}, 400, "a location is required"),
        ({"lat": "31.2"}, 400, "give both lat and long"),
        ({"lat": "91", "long": "121"}, 400, "lat must be a number from -90 to 90"),
        ({"lat": "nan", "long": "121"}, 400, "lat must be a number"),
        ({"lat": "north", "long": "121"}, 400, "lat"),
        ({"lat": "31", "long": "121", "service_code": "0101"}, 404, "unknown service_code '0101': use 0102"),
    ],
)
def test_bad_reports_are_refused_with_a_reason_and_nothing_is_filed(
    o311: Open311, fields: dict[str, str], status: int, text: str
) -> None:
    r = o311.file(**fields)
    assert r.status_code == status
    [error] = r.json()
    assert error["code"] == status and text in error["description"]
    assert o311.rows("SELECT * FROM open311_reports") == []


def test_only_an_integration_or_an_admin_may_file(o311: Open311) -> None:
    r = o311.file(key="auditor", lat="31", long="121")
    assert r.status_code == 403 and "may not reports.file" in r.json()[0]["description"]
    r = o311.client.post("/open311/v2/requests.json", data={"service_code": "0102", "lat": "31", "long": "121"})
    assert r.status_code == 403
    assert o311.file(key="admin", lat="31", long="121").status_code == 200


def test_a_file_that_is_not_an_image_is_refused_by_its_bytes_and_not_stored(o311: Open311) -> None:
    before = o311.stored_files()
    html = b"<html><script>alert(1)</script>" + b" " * 200
    r = o311.file(lat="31", long="121", files={"media": ("photo.jpg", html, "image/jpeg")})
    assert r.status_code == 415 and "JPEG, PNG or WebP" in r.json()[0]["description"]
    r = o311.file(lat="31", long="121", files={"media": ("p.jpg", JPEG[:10], "image/jpeg")})
    assert r.status_code == 415
    assert o311.stored_files() == before and o311.rows("SELECT * FROM open311_reports") == []
    assert o311.file(lat="31", long="121", files={"media": ("p.png", PNG, "image/png")}).status_code == 200


def test_an_oversized_photo_is_refused_even_without_a_content_length(o311: Open311) -> None:
    before = o311.stored_files()
    big = JPEG + bytes(MAX_PHOTO)
    r = o311.file(lat="31", long="121", files={"media": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and r.json()[0]["code"] == 413

    # The same body streamed in chunks, so no Content-Length tells the server in advance.
    boundary = "gwboundary"
    body = io.BytesIO()
    for name, value in (("api_key", o311.keys["hotline"]), ("service_code", "0102"), ("lat", "31"), ("long", "121")):
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    body.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
    )
    body.write(big * 2 + f"\r\n--{boundary}--\r\n".encode())
    payload = body.getvalue()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    r = o311.client.post(
        "/open311/v2/requests.json",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413
    assert o311.stored_files() == before and o311.rows("SELECT * FROM open311_reports") == []


def test_requests_are_filtered_by_status_code_dates_and_ids(o311: Open311) -> None:
    a, b = o311.seed.orders["site-a"].id, o311.seed.orders["site-b"].id
    ids = {x["service_request_id"] for x in o311.read("requests.json").json()}
    assert {a, b} <= ids
    assert o311.read("requests.json", status="closed").json() == []
    assert {x["service_request_id"] for x in o311.read("requests.json", status="open").json()} == ids
    assert o311.read("requests.json", service_code="0101").json() == []
    assert [x["service_request_id"] for x in o311.read("requests.json", service_request_id=f"{b}, nope").json()] == [b]
    assert o311.read("requests.json", start_date="2099-01-01T00:00:00+08:00").json() == []
    assert {x["service_request_id"] for x in o311.read("requests.json", end_date="2099-01-01T00:00:00Z").json()} >= {
        a,
        b,
    }
    r = o311.read("requests.json", start_date="yesterday")
    assert r.status_code == 400 and "start_date is not an ISO 8601" in r.json()[0]["description"]
    assert o311.read("requests.json", status="pending").status_code == 400


def test_a_closed_order_reads_as_closed(o311: Open311) -> None:
    a = o311.seed.orders["site-a"].id
    headers = {"Authorization": f"Bearer {o311.keys['admin']}"}
    for action in ("verify", "close"):
        r = o311.client.post(f"/api/v1/orders/{a}/actions", json={"action": action}, headers=headers)
        assert r.status_code == 200
    [req] = o311.read(f"requests/{a}.json").json()
    assert req["status"] == "closed" and req["status_notes"] == "closed"
    assert a in [x["service_request_id"] for x in o311.read("requests.json", status="closed").json()]
