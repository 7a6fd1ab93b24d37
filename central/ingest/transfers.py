"""The vocabulary every file reassembler shares: the answer about one file and the `transfers` row.

`FileResult` (what to tell the edge about a file), `new_transfer_row` (the row an init starts)
and `describe_gaps` (the reason a `file missing` ack gives) are used alike by the single-instance
FileAssembler (central.ingest.assembler), by SharedFileAssembler (central.ingest.shared_assembly)
and by the handler that turns results into acks. They depend on no assembler state, so they live
here rather than in either assembler's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from central.ingest.ranges import Ranges
from central.timefmt import utc_iso
from wire.messages import FileInit
from wire.topics import Topic

__all__ = ["FileResult", "describe_gaps", "new_transfer_row"]


@dataclass(frozen=True)
class FileResult:
    """What to tell the edge about one file: stored ('ok') or still needed ('missing')."""

    sha256: str
    status: Literal["ok", "missing"]
    reason: str = ""
    duplicate: bool = False


def new_transfer_row(topic: Topic, init: FileInit, now: float) -> dict[str, Any]:
    """The `transfers` row an init starts."""
    return {
        "device_id": topic.device,
        "sha256": init.sha256,
        "site": topic.site,
        "camera": topic.camera,
        "event_id": init.event_id,
        "role": init.role,
        "name": init.name,
        "media_type": init.media_type,
        "size": init.size,
        "ranges": "[]",
        "fin_seen": 0,
        "started_at": utc_iso(now),
        "updated_at": utc_iso(now),
    }


def describe_gaps(missing: Ranges, limit: int = 3) -> str:
    parts = [f"{s}-{e}" for s, e in missing[:limit]]
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    return "bytes " + ", ".join(parts) + more + " not received"
