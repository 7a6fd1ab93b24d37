"""The console's security on the real app, a real SQLite file and real sign-ins: who gets in,
what each role may do, CSRF, path traversal, uploads, sign-in throttling, sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_seed import PASSWORD, USERS, ConsoleSeed, clone, csrf_of, jpeg, seed_console, sign_in
from fastapi.testclient import TestClient

from central.console import ConsoleSettings, create_app


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> ConsoleSeed:
    return seed_console(tmp_path_factory.mktemp("console-seed"))


class Site:
    """The app over a copy of the seed; `client(who)` is a browser signed in as USERS[who]."""

    def __init__(self, seed: ConsoleSeed, data_dir: Path, settings: ConsoleSettings) -> None:
        self.seed, self.data_dir = seed, data_dir
        self.app = create_app(seed.config(data_dir), settings=settings)

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if who is not None:
            assert sign_in(c, who).status_code == 303
        return c

    def audit(self, action: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM audit_log WHERE action = ? ORDER BY seq", [action])]
        finally:
            conn.close()


@pytest.fixture
def site(seed: ConsoleSeed, tmp_path: Path) -> Iterator[Site]:
    settings = ConsoleSettings(cookie_secure="never", max_upload_bytes=64 * 1024)
    s = Site(seed, clone(seed, tmp_path / "central"), settings)
    with TestClient(s.app):  # runs the lifespan (closes the pool at the end)
        yield s


def test_signed_out_pages_redirect_to_login_and_files_get_401(site: Site) -> None:
    order = site.seed.orders["h264"]
    c = site.client()
    for path in ("/", "/orders?status=open", f"/orders/{order.id}", "/admin/users"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=%2F"), path
    for path in (
        f"/evidence/{order.files['clip']}",
        f"/evidence/{order.files['clip']}/video",
        f"/orders/{order.id}/export.zip",
    ):
        assert c.get(path).status_code == 401, path
    r = c.post(f"/orders/{order.id}/acknowledge", data={"reason": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert site.audit("order.acknowledge") == []


def test_the_session_cookie_is_httponly_samesite_and_secure_only_over_https(
    site: Site, seed: ConsoleSeed, tmp_path: Path
) -> None:
    r = sign_in(site.client(), "sup_a")
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("gw_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    https = create_app(seed.config(clone(seed, tmp_path / "https")), settings=ConsoleSettings(cookie_secure="auto"))
    with TestClient(https, base_url="https://testserver") as c:
        cookie = next(
            v for k, v in sign_in(c, "sup_a").headers.multi_items() if k == "set-cookie" and v.startswith("gw_session=")
        )
    assert "Secure" in cookie and "HttpOnly" in cookie
    # Only the token's hash is stored.
    token = cookie.split(";")[0].split("=", 1)[1]
    conn = sqlite3.connect(site.data_dir / "garbagewatch.db")
    assert not conn.execute("SELECT 1 FROM console_sessions WHERE id = ?", [token]).fetchone()


def test_an_auditor_reads_everything_and_every_post_gets_403(site: Site) -> None:
    c = site.client("auditor")
    order = site.seed.orders["old_b"]
    page = c.get(f"/orders/{order.id}")
    assert page.status_code == 200 and 'id="export"' in page.text
    assert 'id="acknowledge"' not in page.text  # no forms for a role that acts on nothing
    token = csrf_of(page.text)
    for action in ("acknowledge", "dispatch", "extend", "resolve", "reject"):
        r = c.post(
            f"/orders/{order.id}/{action}", data={"csrf_token": token, "reason": "r", "assignee": "a", "hours": "1"}
        )
        assert r.status_code == 403, action
    assert (
        c.post(
            "/admin/users", data={"csrf_token": token, "username": "x", "role": "admin", "password": PASSWORD}
        ).status_code
        == 403
    )
    denied = site.audit("access.denied")
    assert len(denied) == 6 and {d["actor"] for d in denied} == {"user:auditor-1"}
    assert c.get(f"/evidence/{order.files['clip']}").status_code == 200
    assert c.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_gets_403_and_changes_nothing(site: Site) -> None:
    c = site.client("sup_a")
    order = site.seed.orders["h264"].id
    r = c.post(f"/orders/{order}/reject", data={"reason": "a cat"})
    assert r.status_code == 403 and "CSRF" not in r.text  # the page explains in words
    r = c.post(f"/orders/{order}/reject", data={"reason": "a cat", "csrf_token": "forged"})
    assert r.status_code == 403
    # Another session's token is not this session's.
    other = csrf_of(site.client("admin").get("/").text)
    assert c.post(f"/orders/{order}/reject", data={"reason": "a cat", "csrf_token": other}).status_code == 403
    # A POST from another site is refused even with the right token.
    token = csrf_of(c.get(f"/orders/{order}").text)
    r = c.post(
        f"/orders/{order}/reject",
        data={"reason": "a cat", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert site.audit("order.reject") == []
    # The sign-in form has its own token (double-submit cookie).
    fresh = site.client()
    assert fresh.post("/login", data={"username": "sup-a", "password": PASSWORD}).status_code == 403


def test_a_supervisor_sees_and_acts_on_their_sites_only(site: Site) -> None:
    c = site.client("sup_a")
    other = site.seed.orders["old_b"]
    assert c.get(f"/orders/{other.id}").status_code == 404
    assert c.get(f"/evidence/{other.files['clip']}").status_code == 404
    token = csrf_of(c.get("/").text)
    assert c.post(f"/orders/{other.id}/reject", data={"reason": "x", "csrf_token": token}).status_code == 404
    assert len(site.audit("evidence.read.denied")) == 1
    listing = c.get("/orders")
    assert other.id not in listing.text
    # A supervisor may not export (the bundle carries audit rows of every site) nor manage users.
    assert c.get(f"/orders/{site.seed.orders['h264'].id}/export.zip").status_code == 403
    assert c.get("/admin/users").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/evidence/..%2F..%2Fgarbagewatch.db",
        "/evidence/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/evidence/../../etc/passwd",
        "/evidence/" + "A" * 64,  # upper-case hex is not a sha256 here
        "/evidence/" + "0" * 63,
        "/evidence/" + "0" * 64,  # well-formed, but not in the database
        "/evidence/" + "0" * 64 + "/video",
        "/evidence/audit-key.pem",
    ],
)
def test_path_traversal_and_unknown_evidence_get_404(site: Site, path: str) -> None:
    assert site.client("admin").get(path).status_code == 404


def test_a_non_image_or_oversized_photo_is_refused_with_a_clear_message(site: Site) -> None:
    c = site.client("sup_a")
    c.cookies.set("gw_lang", "en")
    order = site.seed.orders["h264"].id
    token = csrf_of(c.get(f"/orders/{order}").text)
    r = c.post(
        f"/orders/{order}/resolve",
        data={"csrf_token": token, "reason": "cleaned"},
        files={"photo": ("photo.jpg", b"#!/bin/sh\necho not an image\n" * 10, "image/jpeg")},
    )
    assert r.status_code == 400
    assert "The photo must be a JPEG, PNG or WebP image." in r.text
    big = jpeg(1, size=(2000, 2000))  # a real JPEG, over the 64 KiB limit of this app
    assert len(big) > 2 * 64 * 1024
    r = c.post(
        f"/orders/{order}/resolve",
        data={"csrf_token": token, "reason": "cleaned"},
        files={"photo": ("photo.jpg", big, "image/jpeg")},
    )
    assert r.status_code == 413
    assert "The upload is larger than the 64 KB limit." in r.text
    # Between the photo limit and the body cap: the photo's own message.
    r = c.post(
        f"/orders/{order}/resolve",
        data={"csrf_token": token, "reason": "cleaned"},
        files={"photo": ("photo.jpg", big[: 64 * 1024 + 100], "image/jpeg")},
    )
    assert r.status_code == 413 and "The photo is larger than the 64 KB limit." in r.text
    assert site.audit("order.resolve") == [] and site.audit("order.resolve_photo") == []


def test_repeated_failed_sign_ins_are_refused_with_429_and_a_message(site: Site) -> None:
    c = site.client()
    c.cookies.set("gw_lang", "en")
    for _ in range(5):
        assert sign_in(c, "sup_a", password="wrong password!").status_code == 401
    r = sign_in(c, "sup_a")  # even the right password now waits
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) > 0
    assert sign_in(c, "admin").status_code == 303  # another username from the same address still may
    assert sign_in(site.client(), "nobody-here", password="x" * 12).status_code == 401


def test_signing_out_or_being_disabled_ends_the_session(site: Site) -> None:
    c = site.client("sup_a")
    token = csrf_of(c.get("/").text)
    cookie = c.cookies.get("gw_session")
    assert c.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    c.cookies.set("gw_session", cookie)  # replaying the old cookie does not work
    assert c.get("/", follow_redirects=False).status_code == 303
    assert [r["actor"] for r in site.audit("session.logout")] == ["user:sup-a"]

    victim = site.client("sup_b")
    admin = site.client("admin")
    token = csrf_of(admin.get("/admin/users").text)
    r = admin.post("/admin/users/sup-b/disable", data={"csrf_token": token, "reason": "left"}, follow_redirects=False)
    assert r.status_code == 303
    assert victim.get("/", follow_redirects=False).status_code == 303
    assert sign_in(site.client(), "sup_b").status_code == 401


def test_next_after_sign_in_never_leaves_the_site(site: Site) -> None:
    c = site.client()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        form = c.get("/login", params={"next": evil})
        r = c.post(
            "/login",
            data={"username": USERS["sup_a"][0], "password": PASSWORD, "next": evil, "csrf_token": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/", evil
        c.cookies.clear()
    r = c.get("/lang/en", params={"next": "https://evil.example"}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_pages_carry_security_headers(site: Site) -> None:
    r = site.client().get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
