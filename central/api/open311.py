"""Open311 GeoReport v2 (JSON only): services, requests, one request, and filing a request.

    GET  /open311/v2/services.json
    GET  /open311/v2/requests.json?api_key=...&service_request_id=&service_code=&start_date=&end_date=&status=
    GET  /open311/v2/requests/{service_request_id}.json?api_key=...
    POST /open311/v2/requests.json   (form or multipart: api_key, service_code, lat+long or
                                      address_string, description, media = a photo file)

Every call needs an api_key (a token; filing needs the 'integration' role, or admin). A request
is a work order: service_request_id is the order id, expected_datetime its deadline, status
'closed' for closed or rejected orders and 'open' otherwise; status_notes names the case-flow
status. A filed request becomes a 'reported' order (信息采集) in the same case flow as the
cameras' orders.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from central.api import orders_adapter as orders
from central.api.errors import ApiError
from central.api.report_places import place_of_report, service_codes
from central.api.security import Caller, authenticate, context_of, open311_caller
from central.api.settings import ApiSettings
from central.api.uploads import sniff_image
from central.audit.chain import AuditTrail
from central.auth.roles import Permission
from central.caseflow.hooks import order_subject
from central.timefmt import utc_iso

__all__ = ["open311_request", "router"]

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])

Open311Caller = Annotated[Caller, Depends(open311_caller)]
_DEFAULT_WINDOW = timedelta(days=90)  # GeoReport v2: without dates, the last 90 days


def _check_jurisdiction(settings: ApiSettings, jurisdiction_id: str | None) -> None:
    if (
        jurisdiction_id is not None
        and settings.jurisdiction_id is not None
        and jurisdiction_id != settings.jurisdiction_id
    ):
        raise ApiError(404, "unknown_jurisdiction", f"unknown jurisdiction_id {jurisdiction_id!r}")


def _service(c: Caller, code: str) -> dict[str, Any]:
    s = c.ctx.settings
    return {
        "service_code": code,
        "service_name": s.service_name,
        "description": s.service_description,
        "metadata": False,
        "type": "realtime",
        "keywords": "garbage,exposed garbage,暴露垃圾",
        "group": "sanitation",
    }


def open311_request(order: orders.OrderView, settings: ApiSettings, *, with_media: bool) -> dict[str, Any]:
    """One work order as a GeoReport v2 service request."""
    place = order.address or " / ".join(p for p in (order.site, order.camera, order.zone) if p)
    notes = order.state if not order.last_reason else f"{order.state}: {order.last_reason}"
    media = order.media_sha256 if with_media else None
    return {
        "service_request_id": order.id,
        "status": "closed" if order.state in orders.CLOSED_STATES else "open",
        "status_notes": notes,
        "service_name": settings.service_name,
        "service_code": order.event_code,
        "description": order.description or "",
        "agency_responsible": settings.agency_responsible,
        "service_notice": "",
        "requested_datetime": order.opened_at,
        "updated_datetime": order.updated_at,
        "expected_datetime": order.due_at,
        "address": place,
        "address_id": None,
        "zipcode": None,
        "lat": order.lat,
        "long": order.long,
        "media_url": None if media is None else f"{settings.public_base_url.rstrip('/')}/api/v1/evidence/{media}",
    }


def _parse_date(value: str | None, what: str) -> str | None:
    """An ISO 8601 / W3C date-time as the store writes times (UTC, 'Z'), for comparisons."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(400, "invalid_request", f"{what} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return utc_iso(dt.timestamp())
    except (OverflowError, OSError, ValueError):
        raise ApiError(400, "invalid_request", f"{what} is out of range") from None


@router.get("/services.json", summary="The one service: exposed garbage")
def services(
    c: Open311Caller, jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None
) -> list[dict[str, Any]]:
    c.require(Permission.OPEN311_READ, "open311:services")
    _check_jurisdiction(c.ctx.settings, jurisdiction_id)
    return [_service(c, code) for code in service_codes(c.ctx.config)]


@router.get("/requests.json", summary="Service requests (work orders), newest first")
def requests(
    c: Open311Caller,
    service_request_id: Annotated[str | None, Query(max_length=20_000)] = None,
    service_code: Annotated[str | None, Query(max_length=200)] = None,
    start_date: Annotated[str | None, Query(max_length=64)] = None,
    end_date: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=64)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    c.require(Permission.OPEN311_READ, "open311:requests")
    settings = c.ctx.settings
    _check_jurisdiction(settings, jurisdiction_id)
    codes = None if service_code is None else {s.strip() for s in service_code.split(",") if s.strip()}
    if codes is not None and not codes & set(service_codes(c.ctx.config)):
        return []
    wanted_status = None if status is None else {s.strip().lower() for s in status.split(",") if s.strip()}
    if wanted_status is not None and not wanted_status <= {"open", "closed"}:
        raise ApiError(400, "invalid_request", "status is 'open', 'closed' or both, comma-separated")
    ids = None if service_request_id is None else [s.strip() for s in service_request_id.split(",") if s.strip()]
    since, until = _parse_date(start_date, "start_date"), _parse_date(end_date, "end_date")
    if ids is None and since is None and until is None:
        since = utc_iso(c.ctx.clock() - _DEFAULT_WINDOW.total_seconds())
    states = None
    if wanted_status is not None and len(wanted_status) == 1:
        closed = wanted_status == {"closed"}
        states = [s for s in orders.ORDER_STATES if (s in orders.CLOSED_STATES) == closed]
    found = orders.list_orders(
        c.db,
        sites=c.principal.visible_sites(),
        states=states,
        ids=None if ids is None else ids[: settings.max_page],
        event_codes=None if codes is None else sorted(codes),
        since=since,
        until=until,
        limit=settings.max_page,
        newest_first=True,
    )
    with_media = c.principal.can(Permission.EVIDENCE_READ)
    return [open311_request(o, settings, with_media=with_media) for o in found]


@router.get("/requests/{service_request_id}.json", summary="One service request")
def one_request(
    c: Open311Caller,
    service_request_id: str,
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    c.require(Permission.OPEN311_READ, order_subject(service_request_id[:64]))
    _check_jurisdiction(c.ctx.settings, jurisdiction_id)
    order = orders.get_order(c.db, service_request_id) if len(service_request_id) <= 64 else None
    if order is None or not c.principal.sees_site(order.site):
        raise ApiError(404, "not_found", f"no service request {service_request_id[:64]!r}")
    return [open311_request(order, c.ctx.settings, with_media=c.principal.can(Permission.EVIDENCE_READ))]


def _coordinate(value: float | None, what: str, bound: float) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise ApiError(400, "invalid_request", f"{what} must be a number from {-bound:g} to {bound:g}")
    return value


def _read_photo(media: UploadFile, limit: int) -> tuple[bytes, str]:
    data = media.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"the photo is larger than {limit} bytes")
    kind = sniff_image(data)
    if kind is None:
        raise ApiError(415, "not_an_image", "media must be a JPEG, PNG or WebP photo")
    return data, kind


Text = Annotated[str | None, Form(max_length=500)]


@router.post("/requests.json", summary="File a service request (a 'reported' work order), with an optional photo")
def file_request(
    request: Request,
    service_code: Annotated[str, Form(max_length=64)],
    api_key: Annotated[str | None, Form(max_length=200)] = None,
    lat: Annotated[float | None, Form()] = None,
    long: Annotated[float | None, Form()] = None,
    address_string: Text = None,
    address_id: Text = None,
    description: Annotated[str | None, Form(max_length=4000)] = None,
    media: Annotated[UploadFile | None, File(description="a JPEG, PNG or WebP photo")] = None,
    media_url: Annotated[str | None, Form(max_length=2000)] = None,
    email: Text = None,
    first_name: Text = None,
    last_name: Text = None,
    phone: Text = None,
    device_id: Text = None,
    account_id: Text = None,
    jurisdiction_id: Text = None,
) -> list[dict[str, Any]]:
    ctx = context_of(request)
    token = api_key or request.query_params.get("api_key")
    if token is None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
    with ctx.pool.connection() as db:
        principal = authenticate(ctx, db, token, request, status=403)
        request.state.actor = principal.actor
        c = Caller(principal, db, AuditTrail(db, ctx.clock), ctx)
        c.require(Permission.REPORTS_FILE, "open311:requests")
        _check_jurisdiction(ctx.settings, jurisdiction_id)
        known = service_codes(ctx.config)
        if service_code not in known:
            raise ApiError(
                404, "unknown_service", f"unknown service_code {service_code[:64]!r}: use {', '.join(known)}"
            )
        lat_v, long_v = _coordinate(lat, "lat", 90.0), _coordinate(long, "long", 180.0)
        if (lat_v is None) != (long_v is None):
            raise ApiError(400, "invalid_request", "give both lat and long, or neither")
        if lat_v is None and not (address_string or "").strip() and not (address_id or "").strip():
            raise ApiError(400, "invalid_request", "a location is required: lat and long, address_string or address_id")
        photo = _read_photo(media, ctx.settings.max_photo_bytes) if media is not None and media.filename else None
        contact = {
            k: v
            for k, v in (("email", email), ("first_name", first_name), ("last_name", last_name), ("phone", phone))
            if v
        }
        report = orders.ReportIn(
            service_code=service_code,
            lat=lat_v,
            long=long_v,
            address=(address_string or "").strip() or None,
            address_id=(address_id or "").strip() or None,
            description=(description or "").strip(),
            media_url=media_url,
            contact=contact,
            reporter_device=device_id,
            reporter_account=account_id,
        )
        stored = None
        if photo is not None:
            # The content store first: a crash after it leaves an unreferenced file, never a row
            # pointing at nothing. Storing the same photo twice is a no-op.
            data, media_type = photo
            sha = ctx.evidence.put_bytes(data)
            stored = orders.StoredPhoto(sha, len(data), media_type, ctx.evidence.relative_path(sha))
        site, camera = place_of_report(
            ctx.config, lat_v, long_v, principal.visible_sites(), ctx.settings.report_match_radius_m
        )
        order = orders.file_report(
            ctx.flow,
            db,
            report,
            site=site,
            camera=camera,
            photo=stored,
            actor=principal.actor,
            audit=c.audit,
            now=ctx.clock(),
        )
    ctx.counters.inc("open311_requests_filed")
    return [{"service_request_id": order.id, "service_notice": "", "account_id": account_id}]
