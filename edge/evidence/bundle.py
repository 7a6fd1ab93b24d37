"""The evidence bundle of one event: its files (hashed), the manifest listing them, the signature."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import wire
from edge.evidence.snapshot import DetectionsLike
from wire.messages import EventKind, FileRole
from wire.timefmt import format_ts

__all__ = ["EvidenceFile", "MediaType", "build_event_message", "detection_records", "hash_content"]

MediaType = Literal["video/mp4", "image/jpeg"]
_CHUNK = 1024 * 1024
_CLASS_NAME_BAD = re.compile(r"[^a-z0-9_]")


class EvidenceFile(NamedTuple):
    """One file of a bundle: what the manifest says about it, and its bytes (or where they are)."""

    ref: wire.FileRef
    content: bytes | Path


def hash_content(content: bytes | Path) -> tuple[str, int]:
    """(sha256 hex, size) of bytes, or of a file read in chunks."""
    if isinstance(content, bytes | bytearray | memoryview):
        return hashlib.sha256(content).hexdigest(), len(content)
    digest = hashlib.sha256()
    size = 0
    with open(content, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _class_name(names: Sequence[str], cid: int) -> str:
    raw = names[cid] if 0 <= cid < len(names) else ""
    # The wire allows [a-z0-9_]{1,32}: map anything else rather than lose the detection.
    name = _CLASS_NAME_BAD.sub("_", raw.lower())[:32]
    return name or f"class_{cid}"[:32]


def detection_records(detections: DetectionsLike, frame_size: tuple[int, int]) -> list[wire.DetectionRecord]:
    """Wire records of `detections`: boxes rounded to pixels inside the (width, height) frame."""
    width, height = frame_size
    records = []
    for i in range(len(detections.xyxy)):
        x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
        box = (
            max(0, min(round(x1), width)),
            max(0, min(round(y1), height)),
            max(0, min(round(x2), width)),
            max(0, min(round(y2), height)),
        )
        cid = int(detections.class_id[i])
        records.append(
            wire.DetectionRecord(
                class_name=_class_name(detections.class_names, cid),
                confidence=min(1.0, max(0.0, float(detections.confidence[i]))),
                box=box,
            )
        )
    return records


def build_event_message(
    key: wire.DeviceKey,
    *,
    event_id: str,
    kind: EventKind,
    device_id: str,
    site: str,
    camera: str,
    zone: str,
    first_seen: float,
    at: float,
    clock_synced: bool,
    frame_size: tuple[int, int],
    detections: Sequence[wire.DetectionRecord],
    model: wire.ModelRef,
    files: Sequence[tuple[FileRole, str, MediaType, bytes | Path]],
) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    """Hash every file, build the manifest, sign it; return the event message and its files.

    `first_seen` and `at` are seconds since the epoch; `frame_size` is (width, height).
    Raises ValueError (pydantic's ValidationError or wire.WireError) naming the bad field.
    """
    evidence: list[EvidenceFile] = []
    for role, name, media_type, content in files:
        sha256, size = hash_content(content)
        ref = wire.FileRef.model_validate(
            {"role": role, "name": name, "media_type": media_type, "size": size, "sha256": sha256}
        )
        evidence.append(EvidenceFile(ref, content))
    manifest = wire.Manifest(
        event_id=event_id,
        kind=kind,
        device_id=device_id,
        site=site,
        camera=camera,
        zone=zone,
        first_seen=format_ts(first_seen),
        at=format_ts(at),
        clock_synced=clock_synced,
        frame_size=frame_size,
        detections=list(detections),
        model=model,
        files=[f.ref for f in evidence],
    )
    signature = wire.sign_manifest(key, manifest.model_dump(mode="json"))
    message = wire.EventMessage(manifest=manifest, signature=signature, key_id=key.key_id)
    return message, evidence
