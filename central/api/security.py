"""Authentication (a Bearer token, or Open311's api_key) and authorisation by role, per request.

Every route but /healthz and the OpenAPI documents depends on `caller` (or `open311_caller`).
A refused token is logged (on the request's access log line) with its id, never the secret, and
counted, not audited: anyone can send garbage tokens, and the audit trail is not theirs to fill.
A signed-in caller refused a permission is audited ('access.denied').
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Request
from sqlite_utils import Database

from central.api.context import ApiContext
from central.api.errors import ApiError
from central.audit.chain import AuditTrail
from central.auth.principal import Principal
from central.auth.roles import Permission
from central.auth.tokens import TokenRefused, authenticate_token

__all__ = ["Caller", "authenticate", "caller", "context_of", "open311_caller"]

_MAX_TOKEN_CHARS = 200


@dataclass
class Caller:
    """The authenticated principal of one request, with the connection lent to it."""

    principal: Principal
    db: Database
    audit: AuditTrail
    ctx: ApiContext

    @property
    def actor(self) -> str:
        return self.principal.actor

    def require(self, permission: Permission, subject: str) -> None:
        """403 unless the principal's role grants `permission` (the refusal is audited)."""
        if self.principal.can(permission):
            return
        self.ctx.counters.inc("api_forbidden")
        self.audit(
            self.actor,
            "access.denied",
            subject,
            "",
            {"permission": permission.value, "role": self.principal.role.value, "via": self.principal.via},
        )
        raise ApiError(403, "forbidden", f"role {self.principal.role.value} may not {permission.value}")


def context_of(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
    return value.strip()


def authenticate(ctx: ApiContext, db: Database, token: str | None, request: Request, *, status: int = 401) -> Principal:
    """The token's principal; ApiError(`status`) when there is none or it is refused."""
    client = request.client.host if request.client else "?"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if token is None:
        ctx.counters.inc("api_unauthenticated")
        raise ApiError(status, "unauthenticated", "an API token is required", headers)
    try:
        return authenticate_token(db, token[:_MAX_TOKEN_CHARS], ctx.clock())
    except TokenRefused as exc:
        ctx.counters.inc("api_token_refused")
        # For the request's access log line: why, and which token (its id, never the secret).
        request.state.token_refused = f"{exc.reason} [token id {exc.token_id or '-'}] from {client}"
        raise ApiError(status, "unauthenticated", "the API token is not valid", headers) from None


def caller(request: Request) -> Iterator[Caller]:
    """FastAPI dependency: Bearer token -> Caller, with a pooled connection for the request."""
    ctx = context_of(request)
    token = _bearer(request)
    with ctx.pool.connection() as db:
        principal = authenticate(ctx, db, token, request)
        request.state.actor = principal.actor
        yield Caller(principal, db, AuditTrail(db, ctx.clock), ctx)


def open311_caller(request: Request) -> Iterator[Caller]:
    """FastAPI dependency for Open311 reads: `api_key` query parameter or a Bearer token.

    Open311 answers a missing or invalid api_key with 403, so city tools see what they expect.
    """
    ctx = context_of(request)
    token = request.query_params.get("api_key") or _bearer(request)
    with ctx.pool.connection() as db:
        principal = authenticate(ctx, db, token, request, status=403)
        request.state.actor = principal.actor
        yield Caller(principal, db, AuditTrail(db, ctx.clock), ctx)
