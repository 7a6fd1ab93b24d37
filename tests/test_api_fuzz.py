"""Hypothesis against the real app and a real SQLite file: no input makes a 500, no bad image is stored.

Each test drives one app through many generated requests (state accumulates, as in production).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_seed import make_token
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from central.api.app import create_app
from central.api.context import ApiContext
from central.api.orders_adapter import ACTIONS
from central.api.settings import ApiSettings
from central.api.uploads import sniff_image
from central.config import CentralConfig

FUZZ = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MAX_PHOTO = 4096

JPEG_HEAD = b"\xff\xd8\xff"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


class Harness:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True)
        self.ctx = ApiContext(CentralConfig(data_dir=data_dir), ApiSettings(max_photo_bytes=MAX_PHOTO))
        self.keys = {
            "admin": make_token(data_dir, "admin-1", "admin"),
            "hotline": make_token(data_dir, "hotline", "integration"),
            "sup": make_token(data_dir, "sup", "supervisor", sites=["site-a"]),
        }
        self.client = TestClient(create_app(self.ctx), raise_server_exceptions=False)
        self.order_ids: list[str] = []
        self.photo_shas: list[str] = []

    def file_two_reports(self) -> None:
        """Orders and photos for the generated requests to find (ids and sha256s drawn from these)."""
        for i in range(2):
            photo = JPEG_HEAD + bytes([i]) * 100
            r = self.client.post(
                "/open311/v2/requests.json",
                data={"api_key": self.keys["hotline"], "service_code": "0102", "lat": "31.2", "long": "121.4"},
                files={"media": ("p.jpg", photo, "image/jpeg")},
            )
            assert r.status_code == 200, r.text
            self.order_ids.append(r.json()[0]["service_request_id"])
            self.photo_shas.append(hashlib.sha256(photo).hexdigest())

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()

    def assert_stored_photos_are_images(self) -> None:
        for sha, media_type in self.rows("SELECT sha256, media_type FROM evidence_files WHERE role = 'report_photo'"):
            data = (self.data_dir / "evidence" / sha[:2] / sha).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha
            assert sniff_image(data) == media_type and len(data) <= MAX_PHOTO


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "central")
    with harness.client:
        harness.file_two_reports()
        yield harness
    assert harness.ctx.counters.get("api_errors") == 0


texts = st.text(max_size=300)
numbers_as_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "1e999", "-0", "31.2", "121.5", "0x10", "١٢"]),
    texts,
)
photos = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=600).map(lambda b: JPEG_HEAD + b),
    st.binary(max_size=600).map(lambda b: PNG_HEAD + b),
    st.binary(min_size=4, max_size=600).map(lambda b: b"RIFF" + b[:4] + b"WEBP" + b),
    st.just(JPEG_HEAD + bytes(MAX_PHOTO)),  # over the limit by three bytes
)


# Most generated reports are close to valid, so that the accepting path is exercised as much
# as the refusing ones.
valid_lat = st.floats(min_value=-90, max_value=90).map(str)
valid_long = st.floats(min_value=-180, max_value=180).map(str)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` four times in five."""
    return st.integers(0, 4).flatmap(lambda i: valid if i else other)


@FUZZ
@given(
    key=mostly(st.just("hotline"), st.sampled_from(["admin", "sup", "bad", "none"])),
    service_code=mostly(st.just("0102"), texts),
    lat=mostly(valid_lat, st.one_of(st.none(), numbers_as_text)),
    long=mostly(valid_long, st.one_of(st.none(), numbers_as_text)),
    address=st.one_of(st.none(), st.text(max_size=700)),
    description=st.one_of(st.none(), st.text(max_size=5000)),
    extra=st.dictionaries(
        st.sampled_from(["email", "phone", "media_url", "device_id", "jurisdiction_id", "zzz"]), texts
    ),
    photo=st.one_of(st.none(), photos),
    filename=st.sampled_from(["p.jpg", "../../etc/passwd", "", "x\u202e.png", "a" * 300]),
    content_type=st.sampled_from(["image/jpeg", "text/html", "application/octet-stream"]),
)
def test_filing_reports_never_fails_and_never_stores_a_non_image(
    h: Harness,
    key: str,
    service_code: str,
    lat: str | None,
    long: str | None,
    address: str | None,
    description: str | None,
    extra: dict[str, str],
    photo: bytes | None,
    filename: str,
    content_type: str,
) -> None:
    data = {"service_code": service_code, **extra}
    if key != "none":
        data["api_key"] = h.keys.get(key, "gwt_bad")
    for name, value in (("lat", lat), ("long", long), ("address_string", address), ("description", description)):
        if value is not None:
            data[name] = value
    files = None if photo is None else {"media": (filename, photo, content_type)}
    before = h.rows("SELECT count(*) FROM open311_reports")[0][0]
    r = h.client.post("/open311/v2/requests.json", data=data, files=files)
    assert r.status_code in (200, 400, 403, 404, 413, 415), (r.status_code, r.text)
    assert isinstance(r.json(), list)
    event(f"status {r.status_code}")
    after = h.rows("SELECT count(*) FROM open311_reports")[0][0]
    if r.status_code == 200:
        assert after == before + 1
        assert key in ("hotline", "admin") and service_code == "0102"
        if photo is not None and filename:
            assert sniff_image(photo) is not None and len(photo) <= MAX_PHOTO
    else:
        assert after == before
    h.assert_stored_photos_are_images()


@FUZZ
@given(
    path=st.sampled_from(["services.json", "requests.json", "requests/{x}.json"]),
    x=texts,
    params=st.dictionaries(
        st.sampled_from(
            ["service_request_id", "service_code", "start_date", "end_date", "status", "jurisdiction_id", "q"]
        ),
        st.one_of(texts, st.sampled_from(["open", "closed,open", "2027-01-01T00:00:00+08:00", "0102", "9999-12-31"])),
    ),
    key=st.sampled_from(["hotline", "admin", "bad"]),
)
def test_open311_reads_never_fail(h: Harness, path: str, x: str, params: dict[str, str], key: str) -> None:
    url = "/open311/v2/" + path.replace("{x}", quote(x, safe="") or "_")
    r = h.client.get(url, params={"api_key": h.keys.get(key, "gwt_bad"), **params})
    assert r.status_code in (200, 400, 403, 404), (r.status_code, r.text)


@FUZZ
@given(
    who=st.sampled_from(["admin", "sup", "hotline"]),
    route=st.sampled_from(["evidence", "evidence_meta", "order", "orders", "action"]),
    x=st.one_of(texts, st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), st.sampled_from([0, 1])),
    params=st.dictionaries(
        st.sampled_from(["status", "site", "limit", "offset", "after_seq"]),
        st.one_of(texts, st.sampled_from(["1", "0", "1000", "reported", "registered", "site-a", "-1"])),
    ),
    body=st.fixed_dictionaries(
        {"action": st.one_of(st.sampled_from(list(ACTIONS)), texts)}, optional={"reason": texts, "assignee": texts}
    )
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["action", "reason", "assignee", "x"]), inner, max_size=4)
        ),
        max_leaves=8,
    )
    | st.binary(max_size=200)
    | st.sampled_from([b"Infinity", b"NaN", b'{"action": Infinity}', b'{"action": "dispatch", "reason": "\\ud800"}']),
)
def test_the_json_api_never_fails_and_serves_only_recorded_evidence(
    h: Harness, who: str, route: str, x: str | int, params: dict[str, str], body: Any
) -> None:
    if isinstance(x, int):  # one of the known orders or photos, whichever the route takes
        x = h.photo_shas[x] if route.startswith("evidence") else h.order_ids[x]
    segment = quote(x, safe="") or "_"  # what a client sends for arbitrary text
    headers = {"Authorization": f"Bearer {h.keys[who]}"}
    if route == "action" and isinstance(body, bytes):  # what a broken client sends: any bytes as JSON
        r = h.client.post(
            f"/api/v1/orders/{segment}/actions", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    elif route == "action":
        r = h.client.post(f"/api/v1/orders/{segment}/actions", json=body, headers=headers)
    else:
        url = {
            "evidence": f"/api/v1/evidence/{segment}",
            "evidence_meta": f"/api/v1/evidence/{segment}/meta",
            "order": f"/api/v1/orders/{segment}",
            "orders": "/api/v1/orders",
        }[route]
        r = h.client.get(url, params=params, headers=headers)
    assert r.status_code in (200, 400, 403, 404, 409, 410, 422), (r.status_code, r.text)
    event(f"{route} {r.status_code}")
    if route == "evidence" and r.status_code == 200:
        assert h.rows("SELECT 1 FROM evidence_files WHERE sha256 = ?", x)
        assert hashlib.sha256(r.content).hexdigest() == x


@FUZZ
@given(header=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200))
def test_any_authorization_header_is_a_clean_refusal(h: Harness, header: str) -> None:
    r = h.client.get("/api/v1/me", headers={"Authorization": header.encode("latin-1")})
    assert r.status_code == 401, (header, r.status_code, r.text)
