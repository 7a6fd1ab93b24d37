"""Uploaded photos: what an image is, by its first bytes; and a cap on request body sizes.

A photo's type is decided from its magic bytes, never from the client's Content-Type or file
name. The body cap is enforced while the body streams in (a client can omit Content-Length or
lie in it), so an oversized upload is refused with 413 before it fills memory or disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MIN_PHOTO_BYTES", "BodyLimit", "BodyTooLarge", "sniff_image"]

# Smaller than any real photo; a few magic bytes alone are not an image.
MIN_PHOTO_BYTES = 64


def sniff_image(data: bytes) -> str | None:
    """'image/jpeg', 'image/png' or 'image/webp' when `data` starts like one; None otherwise."""
    if len(data) < MIN_PHOTO_BYTES:
        return None
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body passes the cap. An HTTPException, so FastAPI's body
    parsing passes it on as a 413 instead of turning it into "error parsing the body" (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse (413) an HTTP request whose body exceeds `limit_for(path, method)` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"], scope["method"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._refuse(scope, send, limit)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        path = str(scope["path"])
        message = f"the request body is larger than {limit} bytes"
        # Logged (and counted by status) on the request's access log line.
        scope.setdefault("state", {})["refusal"] = f"too_large: {message}"
        body: object = (
            [{"code": 413, "description": message}]
            if path.startswith("/open311/")
            else {"error": {"status": 413, "code": "too_large", "message": message}}
        )
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})
