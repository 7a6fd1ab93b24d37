"""Message bodies (JSON) of protocol v1. Strict: unknown fields are refused, so a typo fails loudly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from wire.ids import check_event_id, check_id, check_sha256
from wire.timefmt import parse_ts


def _check_timestamp(value: str) -> str:
    parse_ts(value)  # WireError (a ValueError) for a date that does not exist, e.g. month 13
    return value


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# RFC 3339 UTC with milliseconds, e.g. "2026-11-26T03:52:15.123Z": a string, so the signed bytes
# never depend on how a float prints. ASCII digits only ("\d" would take any Unicode digit).
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"),
    AfterValidator(_check_timestamp),
]
EventKind = Literal["confirmed", "update", "cleared"]
FileRole = Literal["clip", "snapshot", "snapshot_boxes", "after_snapshot"]

MAX_FILE_BYTES = 256 * 1024 * 1024
SEGMENT_BYTES = 256 * 1024  # default; the receiver accepts any segment size up to MAX_SEGMENT_BYTES
MAX_SEGMENT_BYTES = 4 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Availability(_Strict):
    """Retained on gw/v1/{device}/status; the last will carries state 'offline'."""

    protocol: Literal[1] = 1
    state: Literal["online", "offline"]
    at: Timestamp | None = None
    cameras: list[str] = Field(default_factory=list)
    version: str = ""


class Stats(_Strict):
    protocol: Literal[1] = 1
    at: Timestamp
    spool_pending: int = 0
    spool_bytes: int = 0
    dropped: int = 0
    cameras: dict[str, dict[str, float]] = Field(default_factory=dict)


class FileInit(_Strict):
    """Announces one evidence file; the file id in the topic is its sha256."""

    protocol: Literal[1] = 1
    event_id: str
    role: FileRole
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}\.(mp4|jpg)$")
    media_type: Literal["video/mp4", "image/jpeg"]
    size: int = Field(ge=1, le=MAX_FILE_BYTES)
    sha256: Sha256Hex
    segment_bytes: int = Field(default=SEGMENT_BYTES, ge=1024, le=MAX_SEGMENT_BYTES)

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, v: str) -> str:
        return check_event_id(v)


class Ack(_Strict):
    """Central -> edge on gw/v1/{device}/ack, sent only after the central committed durably.

    ref_type 'file': the file (ref = its sha256) is stored and verified; 'event': the event
    (ref = event_id) is filed. status 'rejected' is final (the edge drops it and logs the reason);
    'missing' lists the file sha256s the central still needs (the edge resends them).
    `kind` (ref_type 'event' only) names which of the event's messages is acked, since one event id
    carries up to three (confirmed, update, cleared); optional so older centrals stay valid.
    """

    protocol: Literal[1] = 1
    ref_type: Literal["file", "event"]
    ref: str
    status: Literal["ok", "rejected", "missing"]
    kind: EventKind | None = None
    reason: str = ""
    missing: list[Sha256Hex] = Field(default_factory=list)
    work_order: str | None = None


class DetectionRecord(_Strict):
    class_name: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    confidence: float = Field(ge=0.0, le=1.0)
    # Pixels in the full camera frame: x1, y1, x2, y2.
    box: tuple[int, int, int, int]


class ModelRef(_Strict):
    name: str = Field(min_length=1, max_length=128)
    sha256: Sha256Hex


class FileRef(_Strict):
    role: FileRole
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}\.(mp4|jpg)$")
    media_type: Literal["video/mp4", "image/jpeg"]
    size: int = Field(ge=1, le=MAX_FILE_BYTES)
    sha256: Sha256Hex


class Manifest(_Strict):
    """What the device signs: everything needed to prove what the camera saw and when."""

    protocol: Literal[1] = 1
    event_id: str
    kind: EventKind
    device_id: str
    site: str
    camera: str
    zone: str
    first_seen: Timestamp
    at: Timestamp
    clock_synced: bool
    frame_size: tuple[int, int]
    detections: list[DetectionRecord]
    model: ModelRef
    files: list[FileRef]

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, v: str) -> str:
        return check_event_id(v)

    @field_validator("device_id", "site", "camera", "zone")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id(v, "id")

    @field_validator("files")
    @classmethod
    def _unique_files(cls, v: list[FileRef]) -> list[FileRef]:
        for f in v:
            check_sha256(f.sha256)
        if len({f.sha256 for f in v}) != len(v):
            raise ValueError("files list the same sha256 twice")
        return v


class EventMessage(_Strict):
    """Body of gw/v1/{device}/{site}/{camera}/event.

    `dropped` (optional, added within v1) lists the sha256s of manifest files the edge no longer
    holds and will never send (after the manifest was signed, its spool quota dropped them, they
    became unreadable, or the central refused them). It is outside the signature, so it is an
    unsigned claim: the central files the event with those files recorded as missing, and only for
    files the manifest lists and its own store does not hold. Omitted from the JSON when empty, so
    a message without drops is byte-for-byte what it was before the field existed.
    """

    protocol: Literal[1] = 1
    manifest: Manifest
    signature: str = Field(min_length=80, max_length=100)  # base64 of the 64-byte Ed25519 signature
    key_id: str  # fingerprint of the signing key, see signing.fingerprint
    dropped: list[Sha256Hex] = Field(default_factory=list)

    @model_validator(mode="after")
    def _dropped_are_manifest_files(self) -> EventMessage:
        listed = {f.sha256 for f in self.manifest.files}
        unknown = [sha for sha in self.dropped if sha not in listed]
        if unknown:
            raise ValueError(f"dropped lists files the manifest does not: {', '.join(unknown)}")
        if len(set(self.dropped)) != len(self.dropped):
            raise ValueError("dropped lists the same sha256 twice")
        return self

    @model_serializer(mode="wrap")
    def _omit_empty_dropped(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.dropped:
            data.pop("dropped", None)
        return data
