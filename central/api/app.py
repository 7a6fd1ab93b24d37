"""The FastAPI application: the JSON API (/api/v1), Open311 GeoReport v2 (/open311/v2), docs.

    app = create_app(ApiContext(config, settings))

Unauthenticated: /healthz, /docs, /openapi.json (the schema holds no data). Everything else
needs a token and a role that allows it (central/auth/roles.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response

from central.api import audit_routes, evidence, holds, open311, orders
from central.api.context import ApiContext
from central.api.errors import install_error_handlers
from central.api.security import Caller, caller
from central.api.uploads import BodyLimit

__all__ = ["create_app"]

log = logging.getLogger("central.api.access")

_OPEN311_POST = "/open311/v2/requests.json"


def _redacted(request: Request) -> str:
    """The request target without secrets: api_key values never reach a log."""
    query = "&".join(
        f"{k}=***" if k.lower() == "api_key" else f"{k}={v[:80]}" for k, v in request.query_params.multi_items()
    )
    return request.url.path[:300] + (f"?{query}" if query else "")


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.pool.close()

    app = FastAPI(
        title="garbagewatch central",
        version="1",
        summary="Work orders and evidence of exposed garbage; Open311 GeoReport v2.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)

    settings = ctx.settings

    def body_limit(path: str, method: str) -> int:
        if method == "POST" and path == _OPEN311_POST:
            return settings.max_photo_bytes + settings.max_form_bytes
        return settings.max_form_bytes

    app.add_middleware(BodyLimit, limit_for=body_limit)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # uvicorn's own access log is off: it would print api_key query values.
        started = time.monotonic()
        response = await call_next(request)
        refusal = getattr(request.state, "refusal", None)
        token_refused = getattr(request.state, "token_refused", None)
        if refusal and token_refused:
            refusal = f"{refusal}; {token_refused}"
        ctx.counters.inc(f"api_status.{response.status_code}")
        log.log(
            logging.WARNING if response.status_code >= 500 else logging.INFO,
            "%s %s %d %.0fms %s%s",
            request.method,
            _redacted(request),
            response.status_code,
            (time.monotonic() - started) * 1000,
            getattr(request.state, "actor", "-"),
            f" refused ({refusal[:300]})" if refusal and response.status_code >= 400 else "",
        )
        return response

    @app.get("/healthz", tags=["service"], summary="Liveness (no authentication, no data)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/me", tags=["service"], summary="Who the token stands for")
    def me(c: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        sites = c.principal.visible_sites()
        return {
            "actor": c.principal.actor,
            "role": c.principal.role.value,
            "sites": None if sites is None else sorted(sites),
            "via": c.principal.via,
        }

    app.include_router(orders.router)
    app.include_router(holds.router)
    app.include_router(evidence.router)
    app.include_router(audit_routes.router)
    app.include_router(open311.router)
    return app
