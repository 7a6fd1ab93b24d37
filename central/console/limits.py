"""ASGI middleware of the console: a cap on request bodies and the security headers of its pages.

The cap is enforced while the body streams in (a client may omit Content-Length or lie in it),
so an oversized upload is refused with 413 and a page that says so before it fills memory or
disk. Paths of the JSON API pass through untouched: the API caps its own bodies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.console.i18n import language_of, size_text, translator

__all__ = ["API_PREFIXES", "ConsoleBodyLimit", "SecurityHeaders", "is_api_path"]

log = logging.getLogger("central.console")

# Served by the mounted API app (its own limits, errors and, for /docs, its own scripts).
API_PREFIXES = ("/api/", "/open311/", "/docs", "/redoc", "/openapi.json", "/healthz")
_LANG = re.compile(rb"(?:^|;\s*)gw_lang=(zh|en)(?:;|$)")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class _TooLarge(Exception):
    pass


class ConsoleBodyLimit:
    """Refuse (413) a console request whose body exceeds `limit_for(path)[0]` bytes; the page quotes
    `limit_for(path)[1]`, the limit as the person knows it (the photo's, without the form around it)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, int]], default_language: str = "zh") -> None:
        self.app = app
        self.limit_for = limit_for
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit, shown = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._refuse(scope, send, limit, shown)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send, limit, shown)

    def _language(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                match = _LANG.search(value)
                if match:
                    return match.group(1).decode()
        return self.default_language

    async def _refuse(self, scope: Scope, send: Send, limit: int, shown: int) -> None:
        log.warning(
            "console: refused a request body over %d bytes on %s %s", limit, scope["method"], str(scope["path"])[:200]
        )
        t = translator(language_of(self._language(scope)))
        text = t("err.upload_size", size=size_text(shown))
        body = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>413</title>'
            f'<link rel="stylesheet" href="/static/console.css"></head><body><main>'
            f'<h1>{t("err.title")}</h1><p class="flash error" role="alert">{text}</p>'
            f'<p><a href="/">{t("err.back")}</a></p></main></body></html>'
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_HEADERS = [
    # Everything from this origin, nothing inline, no framing: evidence pages cannot be dressed
    # up by another site, and a file that slipped through as HTML could run no script.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self';"
        b" object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above to every console response (not to the API's: /docs loads its own scripts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in _HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
