"""Signing in and out, and the language switch.

Sign-in: the username and password are checked with argon2 (central.auth); failures are
counted per username and address (and per address alone), and past the limit the form answers
429 before any password is checked. A successful sign-in gets a new session token (never one
chosen by the client) and is audited; so is signing out.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from central.audit.chain import AuditTrail
from central.auth.roles import Role
from central.auth.users import authenticate_user
from central.console.i18n import LANGUAGES, translator
from central.console.sessions import (
    clear_login_failures,
    find_session,
    login_retry_after,
    open_session,
    record_login_failure,
    revoke_session,
)
from central.console.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    PageError,
    check_csrf,
    client_ip,
    console_of,
    language,
    posted_form,
    render,
    safe_next,
    secure_cookies,
)

__all__ = ["router"]

log = logging.getLogger("central.console")

router = APIRouter()

_MAX_USERNAME = 64


def _login_page(
    request: Request, *, status: int = 200, error: str = "", flash: str = "", next_url: str = "/"
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, error=error, flash=flash, next=next_url, login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    console = console_of(request)
    with console.ctx.pool.connection() as db:
        signed_in = find_session(
            db, request.cookies.get(SESSION_COOKIE), now=console.ctx.clock(), settings=console.settings
        )
    if signed_in is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    done = translator(language(request))("login.signed_out") if request.query_params.get("out") else ""
    return _login_page(request, flash=done, next_url=safe_next(next))


def _sign_in(request: Request, form: FormData) -> Response:
    console = console_of(request)
    ctx, settings = console.ctx, console.settings
    t = translator(language(request))
    next_url = safe_next(str(form.get("next") or "/"))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not check_csrf(form, cookie_token):
        ctx.counters.inc("console_csrf_refused")
        log.warning("console: sign-in from %s without a valid CSRF token refused", client_ip(request))
        return _login_page(request, status=403, error=t("login.expired_form"), next_url=next_url)
    username = str(form.get("username") or "").strip()[:_MAX_USERNAME]
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    ip = client_ip(request)
    with ctx.pool.connection() as db:
        now = ctx.clock()
        wait = login_retry_after(db, username, ip, now=now, settings=settings)
        if wait > 0:
            ctx.counters.inc("console_login_throttled")
            log.warning(
                "console: sign-in as %r from %s refused: too many failures (retry in %.0f s)", username, ip, wait
            )
            minutes = max(1, int((wait + 59) // 60))
            response = _login_page(request, status=429, error=t("login.throttled", minutes=minutes), next_url=next_url)
            response.headers["Retry-After"] = str(int(wait))
            return response
        user = authenticate_user(db, username, password) if username else None
        if user is None:
            record_login_failure(db, username, ip, now=now, settings=settings)
            ctx.counters.inc("console_login_failed")
            log.info("console: failed sign-in as %r from %s", username, ip)
            return _login_page(request, status=401, error=t("login.failed"), next_url=next_url)
        if user.role is Role.INTEGRATION:
            log.info("console: integration account %r may not sign in to the console", username)
            return _login_page(request, status=403, error=t("login.not_console"), next_url=next_url)
        clear_login_failures(db, username, ip)
        token, _ = open_session(
            db, user.username, now=now, settings=settings, ip=ip, user_agent=request.headers.get("user-agent", "")
        )
        AuditTrail(db, ctx.clock).append(
            f"user:{user.username}", "session.login", f"user:{user.username}", "", {"ip": ip, "via": "console"}
        )
    ctx.counters.inc("console_logins")
    signed_in = RedirectResponse(next_url, status_code=303)
    signed_in.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_max_s),
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )
    signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return signed_in


@router.post("/login")
async def login(request: Request, form: Annotated[FormData, Depends(posted_form)]) -> Response:
    # argon2 takes tens of milliseconds of CPU: off the event loop.
    return await run_in_threadpool(_sign_in, request, form)


def _sign_out(request: Request, form: FormData) -> Response:
    console = console_of(request)
    ctx = console.ctx
    with ctx.pool.connection() as db:
        now = ctx.clock()
        session = find_session(db, request.cookies.get(SESSION_COOKIE), now=now, settings=console.settings)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not check_csrf(form, session.csrf_token):
            ctx.counters.inc("console_csrf_refused")
            raise PageError(403, translator(language(request))("err.csrf"))
        actor = f"user:{session.username}"
        revoke_session(db, session.id, actor=actor, now=now)
        AuditTrail(db, ctx.clock).append(actor, "session.logout", actor, "", {"via": "console"})
    response = RedirectResponse("/login?out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, form: Annotated[FormData, Depends(posted_form)]) -> Response:
    """Any signed-in person may sign out (auditors too: it changes nothing but their own session)."""
    return await run_in_threadpool(_sign_out, request, form)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
    if lang not in LANGUAGES:
        raise PageError(404, translator(language(request))("err.not_found"))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )
    return response
