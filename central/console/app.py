"""The web console as one ASGI app with the JSON/Open311 API mounted behind it.

    app = create_app(config)                        # builds the API context itself
    app = create_console_app(ctx, settings)         # shares an ApiContext (central.console.stack)

Console pages, evidence and exports are this app's routes; every other path (/api/v1, /open311,
/docs, /healthz) goes to the API app, which keeps its own authentication, limits and errors.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from central.api.app import create_app as create_api_app
from central.api.context import ApiContext
from central.api.settings import ApiSettings, api_settings_of
from central.caseflow.flow import CaseFlow
from central.config import CentralConfig
from central.console import routes_admin, routes_auth, routes_files, routes_hold, routes_order, routes_pages
from central.console.i18n import translator
from central.console.integrity import ChainStatusCache
from central.console.limits import ConsoleBodyLimit, SecurityHeaders, is_api_path
from central.console.preview import PreviewMaker
from central.console.schema import ensure_schema
from central.console.settings import ConsoleSettings, console_settings_of
from central.console.web import Console, LoginRequired, PageError, language, render
from central.counters import Counters
from central.timefmt import Clock, system_clock

__all__ = ["create_app", "create_console_app"]

log = logging.getLogger("central.console")
access_log = logging.getLogger("central.console.access")

_HERE = Path(__file__).parent
_RESOLVE = re.compile(r"/orders/[^/]+/resolve")


def _zone(config: CentralConfig, settings: ConsoleSettings) -> ZoneInfo:
    name = settings.timezone or (config.cities[0].timezone if config.cities else "Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("console: unknown time zone %r; showing times in UTC", name)
        return ZoneInfo("UTC")


def _templates(tz: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def localtime(value: object) -> str:
        """'2027-01-15 16:00' in the console's zone, from RFC 3339 UTC text or epoch seconds."""
        if value is None or value == "":
            return "—"
        try:
            if isinstance(value, int | float):
                moment = datetime.fromtimestamp(float(value), tz=UTC)
            else:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):
            return str(value)
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    def filesize(value: object) -> str:
        if not isinstance(value, int):
            return "—"
        for unit in ("B", "KiB", "MiB"):
            if value < 1024:
                return f"{value:.0f} {unit}"
            value //= 1024
        return f"{value} GiB"

    env.filters["localtime"] = localtime
    env.filters["filesize"] = filesize
    return env


def _clean_exports(data_dir: Path) -> None:
    """Bundles half-written when the process stopped are of no use."""
    folder = data_dir / "exports"
    if folder.is_dir():
        for stale in folder.glob(".*.zip"):
            stale.unlink(missing_ok=True)


def create_console_app(ctx: ApiContext, settings: ConsoleSettings, *, include_api: bool = True) -> FastAPI:
    with ctx.pool.connection() as db:
        ensure_schema(db)
    _clean_exports(ctx.config.data_dir)
    tz = _zone(ctx.config, settings)
    console = Console(
        ctx=ctx,
        settings=settings,
        templates=_templates(tz),
        flow=CaseFlow(ctx.config, clock=ctx.clock),
        chain=ChainStatusCache(ctx.config.data_dir, settings.audit_status_ttl_s, ctx.clock),
        previews=PreviewMaker(ctx.config.data_dir / "previews", settings.preview_max_width),
        tz=tz,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.pool.close()  # the mounted API app's own lifespan does not run

    app = FastAPI(title="garbagewatch console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = console
    app.state.ctx = ctx

    def limit_for(path: str) -> tuple[int, int]:
        if _RESOLVE.fullmatch(path):
            return settings.max_upload_bytes + settings.max_form_bytes, settings.max_upload_bytes
        return settings.max_form_bytes, settings.max_form_bytes

    app.add_middleware(ConsoleBodyLimit, limit_for=limit_for, default_language=settings.default_language)
    app.add_middleware(SecurityHeaders)

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.monotonic()
        response = await call_next(request)
        if not is_api_path(request.url.path):  # the API logs its own (without secrets)
            access_log.info(
                "%s %s %d %.0fms %s",
                request.method,
                request.url.path[:300],
                response.status_code,
                (time.monotonic() - started) * 1000,
                getattr(request.state, "actor", "-"),
            )
        return response

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if exc.status == 401:
            t = translator(language(request))
            return render(request, "error.html", status=401, message=t("err.signin_required"))
        return RedirectResponse("/login?" + urlencode({"next": exc.next_url}), status_code=303)

    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        response = render(request, "error.html", status=exc.status, message=exc.message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        t = translator(language(request))
        message = t("err.not_found") if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", status=exc.status_code, message=message)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        ctx.counters.inc("console_errors")
        log.exception(
            "console: internal error on %s %s: %s: %s", request.method, request.url.path[:300], type(exc).__name__, exc
        )
        t = translator(language(request))
        return HTMLResponse(f"<!doctype html><title>500</title><p>{t('err.internal')}</p>", status_code=500)

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)

    # routes_hold before routes_order: its /orders/{id}/hold would match /orders/{id}/{action}.
    for module in (routes_auth, routes_pages, routes_hold, routes_order, routes_files, routes_admin):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    if include_api:
        # Last: it matches every path the console does not serve.
        app.mount("", create_api_app(ctx))
    return app


def create_app(
    config: CentralConfig,
    *,
    settings: ConsoleSettings | None = None,
    api_settings: ApiSettings | None = None,
    clock: Clock = system_clock,
    counters: Counters | None = None,
    include_api: bool = True,
) -> FastAPI:
    """The console (and the API behind it) over the central's data directory."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    ctx = ApiContext(config, api_settings or api_settings_of(config), clock=clock, counters=counters or Counters())
    return create_console_app(ctx, settings or console_settings_of(config), include_api=include_api)
