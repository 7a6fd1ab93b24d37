"""Errors as responses: one JSON shape for the API, Open311's shape under /open311.

    /api/...      {"error": {"status": 404, "code": "not_found", "message": "..."}}
    /open311/...  [{"code": 404, "description": "..."}]          (GeoReport v2)

No request ends in a traceback for the client: an unexpected exception is logged with the
request line, counted (api_errors) and answered 500 with no detail.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["OPEN311_PREFIX", "ApiError", "install_error_handlers"]

log = logging.getLogger("central.api")

OPEN311_PREFIX = "/open311/"


class ApiError(Exception):
    """An expected refusal: `status` and a message safe to show the caller."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _body(request: Request, status: int, code: str, message: str) -> Any:
    if request.url.path.startswith(OPEN311_PREFIX):
        return [{"code": status, "description": message}]
    return {"error": {"status": status, "code": code, "message": message}}


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # The access log line of this request says why it was refused (one line per request).
    request.state.refusal = f"{code}: {message}"
    return JSONResponse(_body(request, status, code, message), status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Open311 clients expect 400 for a bad parameter; the JSON API keeps FastAPI's 422.
        status = 400 if request.url.path.startswith(OPEN311_PREFIX) else 422
        return error_response(request, status, "invalid_request", _describe_validation(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request.app.state.ctx.counters.inc("api_errors")
        log.exception("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(request, 500, "internal_error", "internal error (logged on the server)")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
