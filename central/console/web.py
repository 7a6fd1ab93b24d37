"""The console's request plumbing: who is asking (session cookie -> Viewer), CSRF, pages, refusals.

    viewer: Annotated[Viewer, Depends(page_viewer)]     # HTML page: 303 to /login when signed out
    viewer: Annotated[Viewer, Depends(file_viewer)]     # evidence and exports: 401 when signed out
    viewer: Annotated[Viewer, Depends(acting_viewer)]   # a POST that acts: + not an auditor + CSRF token
    viewer: Annotated[Viewer, Depends(posting_viewer)]  # a POST of any role (legal holds): + CSRF token

CSRF: every form of a session carries the session's synchronizer token (`csrf_token`, random,
kept server-side with the session) and is compared in constant time; the sign-in form, which has
no session yet, uses a double-submit cookie. A POST whose Origin names another host is refused
too. The session cookie is SameSite=Lax, which also keeps it off cross-site POSTs.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlite_utils import Database
from starlette.datastructures import FormData

from central.api.context import ApiContext
from central.audit.chain import AuditTrail
from central.auth.principal import Principal
from central.auth.roles import Permission, Role
from central.auth.users import User, get_user, principal_of_user
from central.caseflow.flow import CaseFlow
from central.console.i18n import Language, Translate, language_of, translator
from central.console.integrity import ChainStatusCache
from central.console.preview import PreviewMaker
from central.console.sessions import Session, find_session
from central.console.settings import ConsoleSettings

__all__ = [
    "LANG_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "Console",
    "LoginRequired",
    "PageError",
    "Viewer",
    "acting_viewer",
    "check_csrf",
    "client_ip",
    "console_of",
    "file_viewer",
    "language",
    "page_viewer",
    "posted_form",
    "posting_viewer",
    "render",
    "safe_next",
    "secure_cookies",
]

log = logging.getLogger("central.console")

SESSION_COOKIE = "gw_session"
LANG_COOKIE = "gw_lang"
LOGIN_CSRF_COOKIE = "gw_login_csrf"
_MAX_NEXT = 2000


@dataclass
class Console:
    """What every console request shares (app.state.console)."""

    ctx: ApiContext
    settings: ConsoleSettings
    templates: jinja2.Environment
    flow: CaseFlow
    chain: ChainStatusCache
    previews: PreviewMaker
    tz: ZoneInfo


class LoginRequired(Exception):
    """Not signed in: an HTML page answers 303 to /login?next=..., evidence and exports 401."""

    def __init__(self, next_url: str, *, status: int = 303) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.status = status


class PageError(Exception):
    """A refusal shown as a page: `status` and an already translated message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass
class Viewer:
    """The signed-in person of one request, with the connection lent to it."""

    user: User
    principal: Principal
    session: Session
    db: Database
    audit: AuditTrail
    console: Console
    lang: Language
    t: Translate
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> str:
        return self.user.role.value

    @property
    def is_admin(self) -> bool:
        return self.principal.can(Permission.USERS_MANAGE)

    @property
    def can_act(self) -> bool:
        return self.principal.can(Permission.ORDERS_ACT)

    @property
    def can_export(self) -> bool:
        return self.principal.can(Permission.AUDIT_EXPORT)

    def require(self, permission: Permission, subject: str) -> None:
        """403 unless the role grants `permission` (the refusal is audited: the caller is signed in)."""
        if self.principal.can(permission):
            return
        self.console.ctx.counters.inc("console_forbidden")
        self.audit(
            self.actor,
            "access.denied",
            subject,
            "",
            {"permission": permission.value, "role": self.role, "via": "console"},
        )
        raise PageError(403, self.t("err.forbidden"))


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def language(request: Request) -> Language:
    return language_of(request.cookies.get(LANG_COOKIE), console_of(request).settings.default_language)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure_cookies(request: Request) -> bool:
    mode = console_of(request).settings.cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def safe_next(value: str | None) -> str:
    """A local path to go back to; '/' for anything that could lead off the site (open redirects)."""
    if not value or len(value) > _MAX_NEXT or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _viewer(request: Request, *, status: int) -> Iterator[Viewer]:
    console = console_of(request)
    ctx = console.ctx
    lang = language(request)
    with ctx.pool.connection() as db:
        now = ctx.clock()
        session = find_session(db, request.cookies.get(SESSION_COOKIE), now=now, settings=console.settings)
        user = get_user(db, session.username) if session is not None else None
        if session is None or user is None or user.disabled or user.role is Role.INTEGRATION:
            ctx.counters.inc("console_unauthenticated")
            raise LoginRequired(_here(request), status=status)
        principal = principal_of_user(user, "session")
        request.state.actor = principal.actor
        yield Viewer(user, principal, session, db, AuditTrail(db, ctx.clock), console, lang, translator(lang))


def page_viewer(request: Request) -> Iterator[Viewer]:
    yield from _viewer(request, status=303)


def file_viewer(request: Request) -> Iterator[Viewer]:
    yield from _viewer(request, status=401)


async def posted_form(request: Request) -> FormData:
    """The POSTed form (urlencoded or multipart), at most one file; the body size is capped by
    central.console.limits before this reads it."""
    return await request.form(max_files=1, max_fields=32, max_part_size=console_of(request).settings.max_form_bytes)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # some clients send none on a same-origin POST; the CSRF token still guards it
    return urlsplit(origin).netloc == request.headers.get("host", "")


def check_csrf(form: FormData, expected: str) -> bool:
    """The form's csrf_token equals `expected` (constant-time)."""
    sent = form.get("csrf_token")
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def acting_viewer(
    request: Request,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    form: Annotated[FormData, Depends(posted_form)],
) -> Viewer:
    """A signed-in person who may post: auditors never may (403), and the form must carry the
    session's CSRF token and come from this site (403)."""
    console = viewer.console
    if viewer.user.role is Role.AUDITOR:
        console.ctx.counters.inc("console_auditor_post")
        viewer.audit(
            viewer.actor,
            "access.denied",
            f"console:{request.url.path[:200]}",
            "",
            {"permission": Permission.ORDERS_ACT.value, "role": viewer.role, "via": "console"},
        )
        raise PageError(403, viewer.t("err.auditor"))
    return posting_viewer(request, viewer, form)


def posting_viewer(
    request: Request,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    form: Annotated[FormData, Depends(posted_form)],
) -> Viewer:
    """A signed-in person of any role whose form carries the session's CSRF token and comes from
    this site (403 otherwise): the legal hold's forms, which auditors use. The route checks the
    permission itself."""
    console = viewer.console
    if console.settings.check_origin and not _same_origin(request):
        console.ctx.counters.inc("console_csrf_refused")
        log.warning(
            "console: POST %s by %s from another origin %r refused",
            request.url.path[:200],
            viewer.actor,
            request.headers.get("origin", "")[:200],
        )
        raise PageError(403, viewer.t("err.origin"))
    if not check_csrf(form, viewer.session.csrf_token):
        console.ctx.counters.inc("console_csrf_refused")
        log.warning("console: POST %s by %s without a valid CSRF token refused", request.url.path[:200], viewer.actor)
        raise PageError(403, viewer.t("err.csrf"))
    return viewer


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page from templates/, with what every page needs: words, language, who, CSRF token."""
    console = console_of(request)
    lang = viewer.lang if viewer is not None else language(request)
    page = console.templates.get_template(template).render(
        t=translator(lang),
        lang=lang,
        viewer=viewer,
        csrf=viewer.session.csrf_token if viewer is not None else "",
        here=_here(request),
        login_url="/login?" + urlencode({"next": _here(request)}),
        **values,
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
