"""The dashboard and the work-order list (filters, total count, pagination)."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from central.auth.roles import Permission
from central.caseflow.states import CLOCK_RUNNING, Status
from central.console.i18n import Translate
from central.console.queries import (
    OPEN_FILTER,
    OrderFilter,
    camera_rows,
    count_orders,
    dashboard_counts,
    list_orders,
    site_choices,
)
from central.console.settings import PAGE_SIZE
from central.console.web import PageError, Viewer, page_viewer, render
from wire.errors import WireError
from wire.ids import check_id

__all__ = ["parse_order_filter", "router"]

router = APIRouter()

ViewerDep = Annotated[Viewer, Depends(page_viewer)]
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_PAGE = 1_000_000
_RUNNING = frozenset(s.value for s in CLOCK_RUNNING)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: ViewerDep) -> HTMLResponse:
    viewer.require(Permission.ORDERS_READ, "dashboard")
    console = viewer.console
    sites = viewer.principal.visible_sites()
    now = console.ctx.clock()
    counts = dashboard_counts(viewer.db, sites, now=now, due_soon_s=console.settings.due_soon_s)
    return render(
        request,
        "dashboard.html",
        viewer=viewer,
        counts=counts,
        cameras=camera_rows(viewer.db, sites),
        due_soon_hours=f"{console.settings.due_soon_s / 3600:g}",
    )


def _day(value: str, what: str, t: Translate) -> date:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise PageError(400, t("err.bad_filter", what=f"{what}: YYYY-MM-DD")) from None


def parse_order_filter(params: dict[str, str], t: Translate) -> OrderFilter:
    """The list's query parameters, checked; 400 with what is wrong otherwise. Empty means unset."""
    status = params.get("status") or None
    if status is not None and status != OPEN_FILTER and status not in {s.value for s in Status}:
        raise PageError(400, t("err.bad_filter", what="status"))
    ids: dict[str, str | None] = {}
    for name in ("site", "camera"):
        value = params.get(name) or None
        if value is not None:
            try:
                check_id(value, name)
            except WireError:
                raise PageError(400, t("err.bad_filter", what=name)) from None
        ids[name] = value
    date_from = _day(params["date_from"], "date_from", t) if params.get("date_from") else None
    date_to = _day(params["date_to"], "date_to", t) if params.get("date_to") else None
    if date_from and date_to and date_from > date_to:
        raise PageError(400, t("err.bad_filter", what="date_from > date_to"))
    overdue = params.get("overdue") or ""
    if overdue not in ("", "0", "1", "on", "true"):
        raise PageError(400, t("err.bad_filter", what="overdue"))
    page_text = params.get("page") or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= _MAX_PAGE:
        raise PageError(400, t("err.bad_filter", what="page"))
    return OrderFilter(
        status=status,
        site=ids["site"],
        camera=ids["camera"],
        date_from=date_from,
        date_to=date_to,
        overdue=overdue in ("1", "on", "true"),
        page=int(page_text),
    )


def _query(f: OrderFilter, page: int) -> str:
    values = {
        "status": f.status or "",
        "site": f.site or "",
        "camera": f.camera or "",
        "date_from": f.date_from.isoformat() if f.date_from else "",
        "date_to": f.date_to.isoformat() if f.date_to else "",
        "overdue": "1" if f.overdue else "",
        "page": str(page) if page > 1 else "",
    }
    return urlencode({k: v for k, v in values.items() if v})


@router.get("/orders", response_class=HTMLResponse)
def orders(request: Request, viewer: ViewerDep) -> HTMLResponse:
    viewer.require(Permission.ORDERS_READ, "orders")
    console = viewer.console
    params = {k: v[:200] for k, v in request.query_params.items()}
    f = parse_order_filter(params, viewer.t)
    sites = viewer.principal.visible_sites()
    now = console.ctx.clock()
    total = count_orders(viewer.db, f, sites, now=now, tz=console.tz)
    rows = list_orders(viewer.db, f, sites, now=now, tz=console.tz, limit=PAGE_SIZE, offset=(f.page - 1) * PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    window = range(max(1, f.page - 3), min(pages, f.page + 3) + 1)
    return render(
        request,
        "orders.html",
        viewer=viewer,
        f=f,
        rows=rows,
        total=total,
        page=f.page,
        pages=pages,
        window=window,
        link=lambda page: "/orders" + (f"?{q}" if (q := _query(f, page)) else ""),
        overdue=lambda row: row["status"] in _RUNNING and row["due_ts"] is not None and row["due_ts"] < now,
        statuses=[s.value for s in Status],
        sites=site_choices(viewer.db, sites),
    )
