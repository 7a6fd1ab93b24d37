"""Write one order's evidence bundle: signed manifests, media, the device key, audit rows, checkpoint.

The audit part proves the order's rows belong to the chain the central signs: the export first
appends its own row ('order.export'), then signs a fresh checkpoint of the chain head, and the
bundle carries every row from the order's first row up to that head (audit/rows.jsonl). Each row
hashes to its sha256 and names its predecessor's, so the verifier can walk from any row of the
order to the signed head without trusting the server. Rows of other subjects in between come
along: the chain cannot be shown without them (an auditor may read them anyway). A finished
export is recorded again with the bundle's sha256 ('order.exported'), after the checkpoint, so a
bundle presented later can be matched to its export. A file deleted under the retention policy is
listed in `missing` as purged (when, why), with its `evidence.purge` audit row among the rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central.audit.chain import AuditRow, AuditTrail, iter_rows
from central.audit.checkpoints import (
    CHECKPOINT_FILE,
    PUBLIC_KEY_FILE,
    CheckpointError,
    append_checkpoint_file,
    issue_checkpoint,
    load_or_create_key,
)
from central.caseflow.hooks import order_subject, order_subjects  # re-exported: readers of an order's rows
from central.config import CentralConfig
from central.devices.registry import DeviceRegistry
from central.evidence_store import ContentStore
from central.retention.purged import Purge, purged_files
from central.store.work_orders import work_order
from central.timefmt import utc_iso
from wire.bundle import FORMAT, SUMS, media_path
from wire.signing import public_key_pem

__all__ = ["ExportError", "ExportedBundle", "export_order_bundle", "order_subjects"]

log = logging.getLogger("central.export")

_CHUNK = 1024 * 1024
_ZIP_DATE = (2000, 1, 1, 0, 0, 0)  # fixed: the same content gives the same bytes
_ORDER_FIELDS = (
    "id", "status", "event_code", "site", "camera", "zone", "device_id", "opened_at", "due_at",
    "closed_at", "assignee", "source", "snapshot_sha256", "after_snapshot_sha256",
)  # fmt: skip


class ExportError(RuntimeError):
    """The bundle cannot be made; the text says why."""


@dataclass(frozen=True)
class ExportedBundle:
    path: Path
    order_id: str
    sha256: str
    size: int
    events: int
    media: int
    audit_rows: int
    checkpoint_seq: int


@dataclass(frozen=True)
class _Media:
    sha256: str
    media_type: str
    role: str
    source: Path


def _events(db: Database, order_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT e.message_id, e.kind, e.at, e.device_id, e.key_id, e.manifest, e.signature"
            " FROM order_events o JOIN events e ON e.message_id = o.message_id"
            " WHERE o.work_order_id = ? ORDER BY e.received_at, e.rowid",
            [order_id],
        )
    )


def _device_key_pem(db: Database, events: list[dict[str, Any]]) -> tuple[str, str, str] | None:
    """(device id, key id, PEM) of the key that signed the order's events (revoked keys too:
    the evidence was signed while it was trusted)."""
    if not events:
        return None
    first = events[0]
    key_ids = {e["key_id"] for e in events}
    if len(key_ids) > 1:
        log.warning(
            "order's events were signed by %d keys (a rotation); the bundle carries %s", len(key_ids), first["key_id"]
        )
    trust = DeviceRegistry(db).trust(first["device_id"])
    key = trust.key(first["key_id"]) if trust is not None else None
    if key is None:
        raise ExportError(f"device {first['device_id']} has no enrolled key {first['key_id']}")
    return first["device_id"], key.key_id, public_key_pem(key.public_key)


def _purged_entry(purge: Purge, role: str) -> dict[str, str]:
    """A file deleted under the retention policy: listed as purged, with when and why (its
    `evidence.purge` audit row comes along in audit/rows.jsonl)."""
    return {
        "sha256": purge.sha256,
        "role": role,
        "reason": f"purged {purge.purged_at} under the retention policy",
        "purged_at": purge.purged_at,
        "purge_reason": purge.reason,
    }


def _signed_media(
    db: Database, store: ContentStore, events: list[dict[str, Any]]
) -> tuple[list[_Media], list[dict[str, str]]]:
    media: dict[str, _Media] = {}
    missing: dict[str, dict[str, str]] = {}
    listed = [(e, json.loads(e["manifest"]).get("files", [])) for e in events]
    purged = purged_files(db, [f["sha256"] for _, files in listed for f in files])
    for e, files in listed:
        for f in files:
            sha, size = f["sha256"], f["size"]
            if sha in media or sha in missing:
                continue
            if sha in purged:
                missing[sha] = _purged_entry(purged[sha], f["role"])
            elif store.has(sha, size):
                media[sha] = _Media(sha, f["media_type"], f["role"], store.path_for(sha))
            else:
                dropped = db.execute(
                    "SELECT max(missing) FROM event_files WHERE sha256 = ? AND message_id = ?", [sha, e["message_id"]]
                ).fetchone()
                why = "dropped by the edge before delivery" if dropped and dropped[0] else "not in the evidence store"
                missing[sha] = {"sha256": sha, "role": f["role"], "reason": why}
    return list(media.values()), list(missing.values())


def _uploads(
    db: Database, store: ContentStore, order_id: str
) -> tuple[list[_Media], list[dict[str, Any]], list[dict[str, str]]]:
    rows = db.execute(
        "SELECT sha256, media_type, 'resolve_photo', uploaded_by, size FROM console_order_photos WHERE order_id = ?"
        " UNION ALL SELECT f.sha256, f.media_type, f.role, o.filed_by, f.size FROM open311_reports o"
        " JOIN evidence_files f ON f.sha256 = o.photo_sha256 WHERE o.order_id = ?",
        [order_id, order_id],
    ).fetchall()
    purged = purged_files(db, [r[0] for r in rows])
    media, listed, gone = [], [], []
    for sha, media_type, role, by, size in rows:
        if sha in purged:
            gone.append(_purged_entry(purged[sha], role))
        elif store.has(sha, size):
            media.append(_Media(sha, media_type, role, store.path_for(sha)))
            listed.append({"sha256": sha, "media_type": media_type, "role": role, "uploaded_by": by})
    return media, listed, gone


def _row_json(row: AuditRow) -> str:
    """The row as the chain hashes it: detail is the stored JSON text, not re-serialised."""
    return json.dumps(
        {
            "seq": row.seq,
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "reason": row.reason,
            "detail": row.detail,
            "prev_sha256": row.prev_sha256,
            "sha256": row.sha256,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def _order_row_seqs(db: Database, order_id: str, shas: list[str]) -> list[int]:
    subjects = order_subjects(order_id) + [f"evidence:{sha}" for sha in shas]
    return [
        int(r[0])
        for r in db.execute(
            "SELECT seq FROM audit_log WHERE subject IN (SELECT value FROM json_each(?)) ORDER BY seq",
            [json.dumps(subjects)],
        )
    ]


def _segment(db: Database, first_seq: int, last_seq: int) -> Iterator[AuditRow]:
    for row in iter_rows(db, first_seq - 1):
        if row.seq > last_seq:
            break
        yield row


def _write_zip(dest: Path, texts: dict[str, bytes], files: dict[str, Path]) -> None:
    sums: dict[str, str] = {}
    with zipfile.ZipFile(dest, "w") as zf:
        for name in sorted({*texts, *files}):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            # Media is compressed already: stored as is. JSON and text are deflated.
            info.compress_type = zipfile.ZIP_STORED if name in files else zipfile.ZIP_DEFLATED
            digest = hashlib.sha256()
            if name in texts:
                data = texts[name]
                with zf.open(info, "w") as out:
                    out.write(data)
                digest.update(data)
            else:
                src = files[name]
                with src.open("rb") as fh, zf.open(info, "w", force_zip64=src.stat().st_size > 2**31 - 1) as out:
                    while chunk := fh.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
            sums[name] = digest.hexdigest()
        listing = "".join(f"{sums[n]}  {n}\n" for n in sorted(sums))
        info = zipfile.ZipInfo(SUMS, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, listing)


def _file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def export_order_bundle(
    db: Database,
    order_id: str,
    *,
    config: CentralConfig,
    store: ContentStore,
    actor: str,
    audit: AuditTrail,
    now: float,
    dest: Path,
) -> ExportedBundle:
    """Write the bundle of `order_id` to `dest` (audited twice: before, and with the bundle's sha256)."""
    order = work_order(db, order_id)
    if order is None:
        raise ExportError(f"no work order {order_id!r}")
    events = _events(db, order_id)
    device = _device_key_pem(db, events)
    signed, missing = _signed_media(db, store, events)
    uploaded, upload_list, purged_uploads = _uploads(db, store, order_id)
    missing += purged_uploads
    try:
        key = load_or_create_key(config.data_dir)  # before the audit row: no row for an export that cannot sign
    except (CheckpointError, OSError) as exc:
        raise ExportError(f"the audit signing key cannot be read: {exc}") from None
    media = {m.sha256: m for m in [*signed, *uploaded]}
    started = audit.append(
        actor,
        "order.export",
        order_subject(order_id),
        "",
        {"events": len(events), "media": sorted(media), "missing": [m["sha256"] for m in missing]},
    )
    cp = issue_checkpoint(db, key, now)
    append_checkpoint_file(config.data_dir / CHECKPOINT_FILE, cp)
    # The rows of the order's files: their reads, and the purge of a file no longer there.
    file_shas = sorted({*media, *(m["sha256"] for m in missing)})
    order_seqs = [s for s in _order_row_seqs(db, order_id, file_shas) if s <= cp.count]
    first = order_seqs[0] if order_seqs else started.seq
    rows = "".join(_row_json(r) + "\n" for r in _segment(db, first, cp.count))
    central_pem = (config.data_dir / PUBLIC_KEY_FILE).read_bytes()
    index = {
        "format": FORMAT,
        "order": {k: order.get(k) for k in _ORDER_FIELDS},
        "device": None if device is None else {"device_id": device[0], "key_id": device[1]},
        "events": [{"message_id": e["message_id"], "kind": e["kind"], "at": e["at"]} for e in events],
        "uploads": upload_list,
        "missing": missing,
        "audit": {"first_seq": first, "last_seq": cp.count, "order_rows": order_seqs, "checkpoint_seq": cp.seq},
        "exported_by": actor,
        "exported_at": utc_iso(now),
    }
    texts: dict[str, bytes] = {
        "bundle.json": json.dumps(index, ensure_ascii=False, indent=2, sort_keys=True).encode(),
        "audit/rows.jsonl": rows.encode(),
        "audit/checkpoint.json": (cp.to_json() + "\n").encode(),
        "audit/central_public_key.pem": central_pem,
    }
    if device is not None:
        texts["device/public_key.pem"] = device[2].encode()
    for e in events:
        texts[f"events/{e['message_id']}/manifest.json"] = e["manifest"].encode()
        texts[f"events/{e['message_id']}/signature.b64"] = e["signature"].encode()
    files = {media_path(m.sha256, m.media_type): m.source for m in media.values()}
    _write_zip(dest, texts, files)
    sha, size = _file_sha256(dest)
    audit.append(
        actor,
        "order.exported",
        order_subject(order_id),
        "",
        {"bundle_sha256": sha, "bytes": size, "checkpoint_seq": cp.seq, "audit_rows": cp.count - first + 1},
    )
    log.info("exported order %s for %s: %d bytes, sha256 %s", order_id, actor, size, sha)
    return ExportedBundle(dest, order_id, sha, size, len(events), len(media), cp.count - first + 1, cp.seq)
