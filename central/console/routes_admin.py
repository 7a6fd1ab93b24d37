"""Admins manage people: add a user (role, sites, initial password), set their sites, disable or enable.

Disabling a user ends their console sessions at once (their personal API tokens stop with them:
central.auth). Every change is audited by central.auth with the admin as the actor.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from central.auth.passwords import MIN_PASSWORD_CHARS, PasswordPolicyError
from central.auth.roles import Permission, Role
from central.auth.users import UserError, add_user, list_users, set_disabled, set_sites
from central.console.sessions import revoke_user_sessions
from central.console.web import PageError, Viewer, acting_viewer, page_viewer, posted_form, render

__all__ = ["router"]

log = logging.getLogger("central.console")

router = APIRouter()

_USERNAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_DONE = ("user_added", "user_disabled", "user_enabled", "sites_saved")


def _users_page(
    request: Request, viewer: Viewer, *, status: int = 200, error: str = "", flash: str = ""
) -> HTMLResponse:
    viewer.require(Permission.USERS_MANAGE, "users")
    return render(
        request,
        "users.html",
        viewer=viewer,
        status=status,
        error=error,
        flash=flash,
        users=list_users(viewer.db),
        roles=[r.value for r in Role],
        min_password=MIN_PASSWORD_CHARS,
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, viewer: Annotated[Viewer, Depends(page_viewer)]) -> HTMLResponse:
    done = request.query_params.get("done", "")
    return _users_page(request, viewer, flash=viewer.t(f"done.{done}") if done in _DONE else "")


def _sites(form: FormData) -> list[str]:
    raw = form.get("sites")
    text = raw if isinstance(raw, str) else ""
    return [s for s in (part.strip() for part in text.replace("，", ",").split(",")) if s]


def _add(request: Request, viewer: Viewer, form: FormData) -> Response:
    username = str(form.get("username") or "").strip()
    role = str(form.get("role") or "")
    password = form.get("password")
    try:
        add_user(
            viewer.db,
            username,
            role,
            password if isinstance(password, str) else "",
            sites=_sites(form),
            actor=viewer.actor,
            audit=viewer.audit,
            now=viewer.console.ctx.clock(),
        )
    except (UserError, PasswordPolicyError, ValueError) as exc:
        return _users_page(request, viewer, status=400, error=viewer.t("err.bad_form", what=str(exc)))
    log.info("console: %s added user %r (%s)", viewer.actor, username, role)
    return RedirectResponse("/admin/users?done=user_added", status_code=303)


@router.post("/admin/users")
async def add(
    request: Request,
    viewer: Annotated[Viewer, Depends(acting_viewer)],
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    viewer.require(Permission.USERS_MANAGE, "users")
    return await run_in_threadpool(_add, request, viewer, form)  # argon2: off the event loop


@router.post("/admin/users/{username}/{change}")
def change(
    request: Request,
    username: str,
    change: str,
    viewer: Annotated[Viewer, Depends(acting_viewer)],
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    viewer.require(Permission.USERS_MANAGE, f"user:{username[:64]}")
    if change not in ("disable", "enable", "sites") or not _USERNAME.fullmatch(username):
        raise PageError(404, viewer.t("err.not_found"))
    if change == "disable" and username == viewer.username:
        return _users_page(request, viewer, status=400, error=viewer.t("err.self_disable"))
    now = viewer.console.ctx.clock()
    reason = str(form.get("reason") or "").strip()[:2000]
    try:
        if change == "sites":
            set_sites(viewer.db, username, _sites(form), actor=viewer.actor, audit=viewer.audit, now=now)
            done = "sites_saved"
        else:
            disable = change == "disable"
            with viewer.db.atomic():
                set_disabled(
                    viewer.db, username, disable, actor=viewer.actor, audit=viewer.audit, now=now, reason=reason
                )
                if disable:
                    revoke_user_sessions(viewer.db, username, actor=viewer.actor, now=now)
            done = "user_disabled" if disable else "user_enabled"
    except UserError as exc:
        return _users_page(request, viewer, status=400, error=viewer.t("err.bad_form", what=str(exc)))
    log.info("console: %s: %s %s", viewer.actor, change, username)
    return RedirectResponse(f"/admin/users?done={done}", status_code=303)
