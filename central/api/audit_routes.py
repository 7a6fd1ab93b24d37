"""The audit trail over the API: read pages of it, export all of it (audited), the latest checkpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from central.api.security import Caller, caller
from central.audit.chain import chain_head, iter_rows
from central.audit.checkpoints import PUBLIC_KEY_FILE, latest_checkpoint
from central.auth.roles import Permission
from central.caseflow.hooks import ORDER_SUBJECT_PREFIX, order_subjects
from central.store.database import open_database
from central.timefmt import utc_iso

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["audit"])

CallerDep = Annotated[Caller, Depends(caller)]


def _subjects(subject: str | None) -> frozenset[str] | None:
    """The subjects a `subject=` filter matches. An order's rows carry 'order:<id>', older ones the
    bare id (kept as written: the chain hashes them), so asking for either spelling finds both."""
    if subject is None:
        return None
    bare = subject.removeprefix(ORDER_SUBJECT_PREFIX)
    if bare != subject or ":" not in subject:
        return frozenset(order_subjects(bare))
    return frozenset({subject})


@router.get("/audit", summary="Audit rows after a sequence number, in order")
def audit_rows(
    c: CallerDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    c.require(Permission.AUDIT_READ, "audit")
    subjects = _subjects(subject)
    rows = []
    last = after_seq
    # Filters are applied while paging, so a page may hold fewer than `limit` rows; `next_after_seq`
    # says where to continue.
    for row in iter_rows(c.db, after_seq, limit):
        last = row.seq
        if (actor is None or row.actor == actor) and (subjects is None or row.subject in subjects):
            rows.append(row.as_dict())
    count, head = chain_head(c.db)
    return {"rows": rows, "next_after_seq": last, "head_seq": count, "head_sha256": head}


@router.get("/audit/checkpoint", summary="The latest signed checkpoint and the key that signs them")
def audit_checkpoint(c: CallerDep) -> dict[str, Any]:
    c.require(Permission.AUDIT_READ, "audit")
    cp = latest_checkpoint(c.db)
    key_file = c.ctx.config.data_dir / PUBLIC_KEY_FILE
    return {
        "checkpoint": None if cp is None else {**cp.body(), "signature": cp.signature},
        "public_key_pem": key_file.read_text() if key_file.exists() else None,
    }


@router.get(
    "/audit/export",
    summary="The whole trail as JSON lines (audited), the latest checkpoint last",
    response_class=StreamingResponse,
)
def audit_export(c: CallerDep) -> StreamingResponse:
    c.require(Permission.AUDIT_EXPORT, "audit")
    before, head = chain_head(c.db)
    own = c.audit.append(c.actor, "audit.export", "audit", "", {"rows": before, "head_sha256": head})
    count = own.seq  # the export holds its own row
    c.ctx.counters.inc("api_audit_exports")
    db_path = c.ctx.config.db_path

    def lines() -> Iterator[bytes]:
        # Its own connection: the pooled one goes back when the handler returns, before streaming.
        db = open_database(db_path)
        try:
            for row in iter_rows(db, 0):
                if row.seq > count:
                    break
                yield (json.dumps(row.as_dict(), ensure_ascii=False) + "\n").encode()
            cp = latest_checkpoint(db)
            if cp is not None:
                yield (cp.to_json() + "\n").encode()
        finally:
            db.close()

    stamp = utc_iso(c.ctx.clock()).replace(":", "")
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.jsonl"'},
    )
