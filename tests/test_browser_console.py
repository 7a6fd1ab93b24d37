"""The console in a real browser: headless Debian Chromium driven by Playwright, over real HTTP.

Each test gets its own copy of one seeded central (orders filed through MQTT ingest with a real
H.264 clip, snapshots and an after-snapshot; users of every role) and its own console server.
Screenshots go to docs/screenshots/ when GW_SCREENSHOTS=1 (the README shows work-order.png),
otherwise to a temporary folder, so a test run never changes the tree.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    PASSWORD,
    ConsoleSeed,
    ConsoleServer,
    chromium_missing,
    launch_chromium,
    seed_console_data,
)

from central.auth.passwords import configure_hashing
from central.console import ConsoleSettings, create_app
from garbagewatch.verify import verify_bundle

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]

if chromium_missing() is None:
    from playwright.sync_api import Browser, BrowserContext, Page, Response, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
ACTIONS = ("acknowledge", "dispatch", "extend", "resolve", "reject")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSeed]:
    # Cheap argon2 while this module runs: a sign-in costs milliseconds, not half a second.
    configure_hashing(time_cost=1, memory_cost_kib=8, parallelism=1)
    try:
        yield seed_console_data(tmp_path_factory.mktemp("browser-seed"))
    finally:
        configure_hashing()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def central(seed: ConsoleSeed, tmp_path: Path) -> ConsoleSeed:
    """This test's own copy of the seeded central."""
    data_dir = tmp_path / "central"
    shutil.copytree(seed.data_dir, data_dir)
    return dataclasses.replace(seed, data_dir=data_dir)


@pytest.fixture
def console(central: ConsoleSeed) -> Iterator[ConsoleServer]:
    # Plain http on 127.0.0.1: cookies without Secure; the audit chain checked at every view.
    settings = ConsoleSettings(cookie_secure="never", audit_status_ttl_s=0, default_language="zh")
    with ConsoleServer(create_app(central.config(), settings=settings)) as server:
        yield server


def _context(browser: Browser, console: ConsoleServer, **options: Any) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=console.url, accept_downloads=True, **options)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(browser: Browser, console: ConsoleServer) -> Iterator[Page]:
    for context in _context(browser, console, viewport={"width": 1280, "height": 900}):
        yield context.new_page()


@pytest.fixture
def phone(browser: Browser, console: ConsoleServer) -> Iterator[Page]:
    for context in _context(browser, console, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True):
        yield context.new_page()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GW_SCREENSHOTS") == "1":
        folder = REPO / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


# -- steps ------------------------------------------------------------------------------------------


def sign_in(page: Page, username: str, password: str = PASSWORD, *, lang: str | None = None) -> None:
    if lang is not None:
        page.goto(f"/lang/{lang}?next=/login")
    page.goto("/login")
    page.fill("input#username", username)
    page.fill("input#password", password)
    page.click("button#login-submit")
    page.wait_for_load_state()


def text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def order_rows(page: Page) -> list[str]:
    return [a.inner_text().strip() for a in page.locator("table#orders a.order-link").all()]


def sideways(page: Page) -> list[str]:
    """What sticks out past the right edge of the screen: the page scrolling sideways, or any element
    (also one a parent clips) reaching past it, except inside a `.scroll` box, which scrolls by design."""
    found: list[str] = page.evaluate(
        """() => {
             const width = document.documentElement.clientWidth;
             const out = [];
             if (document.documentElement.scrollWidth > window.innerWidth) out.push('the page scrolls sideways');
             for (const el of document.querySelectorAll('body *')) {
               if (el.closest('.scroll')) continue;
               const r = el.getBoundingClientRect();
               if (r.width > 0 && r.right > width + 1) {
                 const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
                 out.push(`${name}: right edge at ${Math.round(r.right)}px`);
               }
             }
             return out;
           }"""
    )
    return found


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


# -- the tests --------------------------------------------------------------------------------------


def test_sign_in_dashboard_and_sign_out(page: Page, central: ConsoleSeed, shots: Path) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))  # signed out: every page asks to sign in

    sign_in(page, central.users["supervisor"], "not the password")
    expect(page.locator("form#login")).to_be_visible()
    expect(page.locator("[role=alert]")).to_contain_text("用户名或密码错误")

    sign_in(page, central.users["supervisor"])
    expect(page).to_have_url(re.compile(r"/$"))
    # The supervisor covers site-a: its one open order; site-b's is not theirs.
    expect(page.locator("#count-open")).to_have_text("1")
    expect(page.locator("#count-overdue")).to_have_text("0")
    expect(page.locator("#count-due-soon")).to_be_visible()
    expect(page.locator("table#cameras")).to_be_visible()

    page.click("button#logout")
    expect(page).to_have_url(re.compile(r"/login\?out=1$"))
    page.goto("/orders")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    sign_in(page, central.users["admin"], lang="en")
    expect(page.locator("#count-open")).to_have_text("2")  # an admin sees every site
    page.screenshot(path=shots / "dashboard.png", full_page=True)


def test_the_order_list_filters_by_site_and_status_and_opens_an_order(
    page: Page, central: ConsoleSeed, shots: Path
) -> None:
    sign_in(page, central.users["admin"], lang="en")
    page.goto("/orders")
    expect(page.locator("#total-count")).to_have_text("3")
    assert sorted(order_rows(page)) == sorted(o.id for o in (central.open_a, central.closed_a, central.open_b))
    expect(page.locator("nav#pagination")).to_be_visible()
    page.screenshot(path=shots / "orders.png", full_page=True)

    page.select_option("#filter-site", "site-b")
    page.click("#filter-apply")
    expect(page).to_have_url(re.compile(r"site=site-b"))
    expect(page.locator("#total-count")).to_have_text("1")
    assert order_rows(page) == [central.open_b.id]

    page.select_option("#filter-site", "site-a")
    page.select_option("#filter-status", "closed")
    page.click("#filter-apply")
    expect(page).to_have_url(re.compile(r"status=closed"))
    expect(page.locator("#total-count")).to_have_text("1")
    assert order_rows(page) == [central.closed_a.id]

    page.goto("/orders?status=open")
    expect(page.locator("#total-count")).to_have_text("2")
    page.goto("/orders?status=no-such-status")  # a filter that is not one: refused, not ignored
    expect(page.locator("main")).to_contain_text("Invalid filter")

    page.goto("/orders?status=closed")
    page.click(f"a.order-link:text('{central.closed_a.id}')")
    expect(page).to_have_url(re.compile(rf"/orders/{central.closed_a.id}$"))
    expect(page.locator("h1")).to_contain_text(central.closed_a.id)


def test_the_work_order_page_plays_the_clip_and_shows_its_evidence(
    page: Page, central: ConsoleSeed, shots: Path
) -> None:
    order = central.closed_a
    clip_responses: list[Response] = []
    page.on("response", lambda r: clip_responses.append(r) if "/video" in r.url else None)
    sign_in(page, central.users["supervisor"], lang="en")
    page.goto(f"/orders/{order.id}")

    # The camera's stills: the garbage, and the spot seen clean that closed the order.
    expect(page.locator("img#snapshot")).to_be_visible()
    page.wait_for_function("() => document.querySelector('img#snapshot').complete")
    assert image_loaded(page, "img#snapshot") and image_loaded(page, "img#after-snapshot")
    expect(page.locator("#order-status")).to_have_attribute("data-status", "closed")

    # The clip is the camera's H.264, played as stored: the browser decodes and advances it.
    video = page.locator("video#clip")
    expect(video.locator("source")).to_have_attribute("src", f"/evidence/{order.clip_sha256}/video")
    assert page.evaluate("""() => document.createElement('video').canPlayType('video/mp4; codecs="avc1.4D401E"')""")
    page.evaluate("() => { const v = document.querySelector('video#clip'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('video#clip').readyState >= 3")  # HAVE_FUTURE_DATA
    page.wait_for_function("() => document.querySelector('video#clip').currentTime > 0.5")
    playback = page.evaluate(
        "() => { const v = document.querySelector('video#clip');"
        " return {error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight, duration: v.duration}; }"
    )
    assert playback["error"] is None
    assert (playback["width"], playback["height"]) == (640, 360)
    assert 2.5 <= playback["duration"] <= 3.5
    # Chromium asks for the clip with Range requests: the server answers them (206).
    assert any(r.status == 206 for r in clip_responses), [r.status for r in clip_responses]
    page.evaluate("() => { const v = document.querySelector('video#clip'); v.pause(); v.currentTime = 1.5; }")
    page.wait_for_function("() => document.querySelector('video#clip').readyState >= 2")

    # Every file verifies (sha256 and the device's signature); the audit chain is intact.
    integrity = page.locator("table#evidence span.integrity")
    expect(integrity).to_have_count(3)  # clip, snapshot, after-snapshot
    assert {i.inner_text() for i in integrity.all()} == {"ok"}
    expect(page.locator("#audit-status")).to_have_attribute("data-state", "ok")
    expect(page.locator("#deadline")).to_be_visible()
    assert page.locator("ol#timeline li").count() >= 2  # filed and closed, at least
    expect(page.locator("table#notifications tbody tr").first).to_contain_text("sent")
    page.screenshot(path=shots / "work-order.png", full_page=True)


def test_a_supervisor_resolves_an_order_with_a_photo(page: Page, central: ConsoleSeed, tmp_path: Path) -> None:
    order = central.open_a
    photo = tmp_path / "cleaned.jpg"
    photo.write_bytes(central.resolve_photo)
    sign_in(page, central.users["supervisor"], lang="en")
    page.goto(f"/orders/{order.id}")
    timeline = page.locator("ol#timeline li")
    before = timeline.count()
    for action in ACTIONS:  # a registered order: every action is offered to a supervisor
        expect(page.locator(f"form#{action} input[name=csrf_token]")).to_have_count(1)

    page.fill("form#resolve [name=reason]", "Swept up by the street crew; bags taken away.")
    page.set_input_files("input#resolve-photo", str(photo))
    page.click("form#resolve button[type=submit]")

    expect(page).to_have_url(re.compile(rf"/orders/{order.id}\?done=resolve$"))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "resolved")
    # The timeline gains the resolution (and the photo's upload), with who did it and why.
    expect(timeline).to_have_count(before + 2)
    resolved = page.locator("ol#timeline li[data-action='order.resolve']")
    expect(resolved).to_have_count(1)
    expect(resolved).to_contain_text("user:sam")
    expect(resolved).to_contain_text("Swept up by the street crew")
    expect(page.locator("ol#timeline li[data-action='order.resolve_photo']")).to_have_count(1)
    photo_img = page.locator("img.resolve-photo")
    expect(photo_img).to_have_count(1)
    page.wait_for_function("() => document.querySelector('img.resolve-photo').complete")
    assert image_loaded(page, "img.resolve-photo")
    expect(page.locator("form#resolve")).to_have_count(0)  # resolved: nothing more to resolve


def test_an_auditor_reads_but_every_action_is_refused(page: Page, central: ConsoleSeed) -> None:
    order = central.open_a
    sign_in(page, central.users["auditor"], lang="en")
    page.goto(f"/orders/{order.id}")
    expect(page.locator("#order-status")).to_have_attribute("data-status", "registered")
    for action in ACTIONS:
        expect(page.locator(f"form#{action}")).to_have_count(0)
    timeline_before = page.locator("ol#timeline li").count()

    # What the missing forms would have sent, with the auditor's own session and CSRF token: 403.
    token = page.locator("header form input[name=csrf_token]").get_attribute("value")
    for action in ACTIONS:
        status = page.evaluate(
            """async ([url, token]) => {
                 const form = new FormData();
                 form.append('csrf_token', token);
                 form.append('reason', 'an auditor trying');
                 form.append('assignee', 'crew-1');
                 form.append('hours', '2');
                 const r = await fetch(url, {method: 'POST', body: form, redirect: 'manual'});
                 return r.status;
               }""",
            [f"/orders/{order.id}/{action}", token],
        )
        assert status == 403, f"an auditor's {action} answered {status}"
    # And a refusal is a page that says so, for a browser that posts a form.
    page.evaluate(
        """([url, token]) => {
             const f = document.createElement('form');
             f.method = 'post'; f.action = url;
             for (const [k, v] of [['csrf_token', token], ['reason', 'an auditor trying']]) {
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i);
             }
             document.body.append(f); f.submit();
           }""",
        [f"/orders/{order.id}/reject", token],
    )
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text("Auditors read; they do not act.")

    page.goto(f"/orders/{order.id}")
    expect(page.locator("#order-status")).to_have_attribute("data-status", "registered")
    assert page.locator("ol#timeline li").count() == timeline_before  # refusals changed nothing


def test_an_exported_bundle_verifies_offline(page: Page, central: ConsoleSeed, tmp_path: Path) -> None:
    order = central.closed_a
    sign_in(page, central.users["auditor"], lang="en")
    page.goto(f"/orders/{order.id}")
    with page.expect_download() as download_info:
        page.click("a#export")
    download = download_info.value
    assert download.suggested_filename == f"{order.id}-evidence.zip"
    bundle = tmp_path / download.suggested_filename
    download.save_as(bundle)

    verdict = verify_bundle(bundle, central.device_keys["box-1"], central.central_key)
    assert verdict.passed, verdict.failures
    assert any("clip matches the signed manifest" in line for line in verdict.ok_lines), verdict.ok_lines
    assert any("after_snapshot matches the signed manifest" in line for line in verdict.ok_lines)
    # Another device's key does not vouch for it.
    assert not verify_bundle(bundle, central.device_keys["box-2"]).passed

    page.reload()
    expect(page.locator("ol#timeline li[data-action^='order.export']").first).to_be_visible()


def test_the_language_switch(page: Page, central: ConsoleSeed) -> None:
    sign_in(page, central.users["admin"])
    page.goto("/orders")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("工单")
    page.click("nav.lang a[lang=en]")
    expect(page).to_have_url(re.compile(r"/orders$"))  # back where it was
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Work orders")
    page.goto(f"/orders/{central.open_a.id}")
    expect(page.locator("h1")).to_have_text(f"Work order {central.open_a.id}")
    page.click("nav.lang a[lang=zh-CN]")
    expect(page.locator("h1")).to_have_text(f"工单 {central.open_a.id}")


def test_a_phone_shows_every_page_without_sideways_scrolling(phone: Page, central: ConsoleSeed, shots: Path) -> None:
    sign_in(phone, central.users["supervisor"])
    problems = {}
    for path in ("/", "/orders", f"/orders/{central.open_a.id}", f"/orders/{central.closed_a.id}"):
        phone.goto(path)
        phone.wait_for_load_state("load")
        problems[path] = sideways(phone)
    phone.wait_for_function("() => document.querySelector('img#snapshot').complete")
    expect(phone.locator("video#clip")).to_be_visible()
    phone.screenshot(path=shots / "work-order-phone.png", full_page=True)
    assert {path: found for path, found in problems.items() if found} == {}, f"on a {PHONE['width']} px wide phone"
