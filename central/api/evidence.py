"""Evidence files by sha256: metadata and download. Every download is audited before it is sent.

A file deleted by the retention sweep (central.retention) keeps its row: its meta says when and
why (`purged_at`, `purge_reason`), and a download answers 410 `evidence_purged`.

The path to a file is never built from the request: the sha256 must be 64 lower-case hex
digits, must be recorded in evidence_files, and the file is then located by the content store
from that checked value. The caller must see a site the file belongs to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from central.api import orders_adapter as orders
from central.api.errors import ApiError
from central.api.security import Caller, caller
from central.auth.roles import Permission
from central.store.evidence import evidence_file
from wire.ids import SHA256_HEX

__all__ = ["SERVED_MEDIA_TYPES", "router"]

router = APIRouter(prefix="/api/v1", tags=["evidence"])

CallerDep = Annotated[Caller, Depends(caller)]

# Served with their own type; anything else (a device may announce any media type) goes out as
# application/octet-stream, so a browser never renders evidence as a page on the API's origin.
SERVED_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "video/mp4", "application/json"})
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4"}


def _checked_sha256(value: str) -> str:
    if not SHA256_HEX.fullmatch(value):
        raise ApiError(400, "invalid_sha256", "an evidence id is 64 lower-case hex digits (its sha256)")
    return value


def _visible_file(c: Caller, sha256: str, subject: str) -> dict[str, Any]:
    c.require(Permission.EVIDENCE_READ, subject)
    row = evidence_file(c.db, sha256)
    if row is None:
        raise ApiError(404, "not_found", "no evidence file with this sha256")
    visible = c.principal.visible_sites()
    sites = orders.evidence_sites(c.db, sha256)
    if visible is not None and not sites & visible:
        # Not theirs to read; audited, and answered like a missing file (no hint it exists).
        c.audit(c.actor, "evidence.read.denied", subject, "", {"sha256": sha256, "sites": sorted(sites)})
        raise ApiError(404, "not_found", "no evidence file with this sha256")
    return row


@router.get("/evidence/{sha256}/meta", summary="What an evidence file is and which orders it belongs to")
def evidence_meta(c: CallerDep, sha256: str) -> dict[str, Any]:
    sha = _checked_sha256(sha256)
    row = _visible_file(c, sha, f"evidence:{sha}")
    return {
        "sha256": sha,
        "size": row["size"],
        "media_type": row["media_type"],
        "role": row["role"],
        "name": row["name"],
        "device_id": row["device_id"] or None,
        "stored_at": row["stored_at"],
        "purged_at": row.get("purged_at"),
        "purge_reason": row.get("purge_reason"),
        "orders": orders.evidence_orders(c.db, sha),
        "download": None if row.get("purged_at") else f"/api/v1/evidence/{sha}",
    }


@router.get(
    "/evidence/{sha256}",
    summary="Download an evidence file (audited: who read which sha256)",
    response_class=FileResponse,
)
def download_evidence(c: CallerDep, sha256: str) -> FileResponse:
    sha = _checked_sha256(sha256)
    subject = f"evidence:{sha}"
    row = _visible_file(c, sha, subject)
    path = c.ctx.evidence.path_for(sha)  # from the checked sha256 only
    if row.get("purged_at"):
        # Deleted under the retention policy: gone on purpose, and said so (not "missing").
        day = str(row["purged_at"])[:10]
        c.ctx.counters.inc("api_evidence_purged")
        c.audit(
            c.actor,
            "evidence.read.failed",
            subject,
            "file purged under the retention policy",
            {"sha256": sha, "purged_at": row["purged_at"]},
        )
        raise ApiError(410, "evidence_purged", f"the evidence file was purged on {day} under the retention policy")
    if not c.ctx.evidence.has(sha, row["size"]):
        c.ctx.counters.inc("api_evidence_missing")
        c.audit(c.actor, "evidence.read.failed", subject, "file missing from the store", {"sha256": sha})
        raise ApiError(410, "evidence_missing", "the evidence file is recorded but missing from the store")
    media_type = row["media_type"] if row["media_type"] in SERVED_MEDIA_TYPES else "application/octet-stream"
    c.audit(c.actor, "evidence.read", subject, "", {"sha256": sha, "size": row["size"], "via": c.principal.via})
    c.ctx.counters.inc("api_evidence_reads")
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{sha}{_EXTENSIONS.get(media_type, '.bin')}",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{sha}"',
            "X-Evidence-SHA256": sha,
        },
    )
