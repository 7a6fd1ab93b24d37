"""Evidence files (with HTTP range requests) and the evidence bundle export. Every read is audited.

The path to a file is never built from the request: the sha256 must be 64 lower-case hex digits
and recorded in evidence_files (else 404), and the content store locates the file from that
checked value. A viewer must see a site the file belongs to (else 404, audited). A file the
retention sweep purged answers 410 with the day it was purged (audited as a failed read).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from central.api.evidence import SERVED_MEDIA_TYPES
from central.auth.roles import Permission
from central.caseflow.hooks import order_subject
from central.console.preview import PreviewError
from central.console.queries import file_sites
from central.console.routes_order import visible_order
from central.console.web import PageError, Viewer, file_viewer
from central.export.bundle import ExportError, export_order_bundle
from central.store.evidence import evidence_file
from wire.ids import SHA256_HEX

__all__ = ["router"]

log = logging.getLogger("central.console")

router = APIRouter()

ViewerDep = Annotated[Viewer, Depends(file_viewer)]
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4"}


def _local_day(viewer: Viewer, stamp: str) -> str:
    """'2026-11-26': the day of an RFC 3339 UTC time in the console's zone."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(viewer.console.tz).date().isoformat()
    except ValueError:
        return stamp[:10]


def _visible_file(viewer: Viewer, sha256: str) -> dict[str, Any]:
    """The evidence_files row of a file the viewer may read; 404 for anything else."""
    t = viewer.t
    if not SHA256_HEX.fullmatch(sha256):
        viewer.console.ctx.counters.inc("console_bad_evidence_path")
        raise PageError(404, t("err.not_found"))
    viewer.require(Permission.EVIDENCE_READ, f"evidence:{sha256}")
    row = evidence_file(viewer.db, sha256)
    if row is None:
        raise PageError(404, t("err.not_found"))
    visible = viewer.principal.visible_sites()
    if visible is not None:
        sites = file_sites(viewer.db, sha256)
        if not sites & visible:
            viewer.audit(
                viewer.actor,
                "evidence.read.denied",
                f"evidence:{sha256}",
                "",
                {"sha256": sha256, "sites": sorted(sites), "via": "console"},
            )
            raise PageError(404, t("err.not_found"))
    if row.get("purged_at"):
        # Deleted under the retention policy: said so, not shown as a broken or missing file.
        viewer.console.ctx.counters.inc("console_evidence_purged")
        viewer.audit(
            viewer.actor,
            "evidence.read.failed",
            f"evidence:{sha256}",
            "file purged under the retention policy",
            {"sha256": sha256, "purged_at": row["purged_at"], "via": "console"},
        )
        raise PageError(410, t("order.purged", day=_local_day(viewer, str(row["purged_at"]))))
    if not viewer.console.ctx.evidence.has(sha256, row["size"]):
        viewer.console.ctx.counters.inc("console_evidence_missing")
        viewer.audit(
            viewer.actor,
            "evidence.read.failed",
            f"evidence:{sha256}",
            "file missing from the store",
            {"sha256": sha256, "via": "console"},
        )
        log.error("console: evidence %s is recorded but missing from the store", sha256)
        raise PageError(410, t("err.not_found"))
    return row


def _read(request: Request, viewer: Viewer, sha256: str, *, preview: bool) -> None:
    detail: dict[str, Any] = {"sha256": sha256, "via": "console"}
    if "range" in request.headers:
        detail["range"] = request.headers["range"][:100]
    if preview:
        detail["preview"] = "h264"
    viewer.audit(viewer.actor, "evidence.read", f"evidence:{sha256}", "", detail)
    viewer.console.ctx.counters.inc("console_evidence_reads")


def _headers(sha256: str) -> dict[str, str]:
    return {"Cache-Control": "private, no-store", "ETag": f'"{sha256}"', "X-Evidence-SHA256": sha256}


@router.get("/evidence/{sha256}")
def evidence(request: Request, sha256: str, viewer: ViewerDep) -> FileResponse:
    row = _visible_file(viewer, sha256)
    media_type = row["media_type"] if row["media_type"] in SERVED_MEDIA_TYPES else "application/octet-stream"
    _read(request, viewer, sha256, preview=False)
    return FileResponse(
        viewer.console.ctx.evidence.path_for(sha256),
        media_type=media_type,
        filename=f"{sha256}{_EXTENSIONS.get(media_type, '.bin')}",
        content_disposition_type="inline" if media_type in _EXTENSIONS else "attachment",
        headers=_headers(sha256),
    )


@router.get("/evidence/{sha256}/video")
def video(request: Request, sha256: str, viewer: ViewerDep) -> FileResponse:
    """The clip as a browser plays it: as stored if H.264, else its H.264 preview (made on first view)."""
    row = _visible_file(viewer, sha256)
    if not str(row["media_type"]).startswith("video/"):
        raise PageError(404, viewer.t("err.not_found"))
    source = viewer.console.ctx.evidence.path_for(sha256)
    try:
        path, is_preview = viewer.console.previews.playable(sha256, source)
    except PreviewError as exc:
        # Still the evidence: served as stored (a browser may fail to play it; it can be downloaded).
        viewer.console.ctx.counters.inc("console_preview_failed")
        log.error("console: clip %s: %s; serving it as stored", sha256, exc)
        path, is_preview = source, False
    _read(request, viewer, sha256, preview=is_preview)
    return FileResponse(path, media_type="video/mp4", headers=_headers(sha256))


@router.get("/orders/{order_id}/export.zip")
def export(request: Request, order_id: str, viewer: ViewerDep) -> FileResponse:
    """The order's evidence bundle (auditors and admins). `garbagewatch verify` checks it offline."""
    viewer.require(Permission.AUDIT_EXPORT, order_subject(order_id))
    visible_order(viewer, order_id)
    console = viewer.console
    folder = console.ctx.config.data_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f".{secrets.token_hex(8)}.zip"
    try:
        bundle = export_order_bundle(
            viewer.db,
            order_id,
            config=console.ctx.config,
            store=console.ctx.evidence,
            actor=viewer.actor,
            audit=viewer.audit,
            now=console.ctx.clock(),
            dest=dest,
        )
    except (ExportError, OSError) as exc:
        dest.unlink(missing_ok=True)
        console.ctx.counters.inc("console_export_failed")
        log.error("console: export of %s for %s failed: %s", order_id, viewer.actor, exc)
        raise PageError(500, viewer.t("err.export", what=str(exc))) from None
    console.ctx.counters.inc("console_exports")
    return FileResponse(
        bundle.path,
        media_type="application/zip",
        filename=f"{order_id}-evidence.zip",
        headers={"Cache-Control": "private, no-store", "X-Bundle-SHA256": bundle.sha256},
        background=BackgroundTask(dest.unlink, missing_ok=True),
    )
