"""Checking a signed event: enrolled device, its key (not revoked), the signature over the manifest
as received, the topic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from central.config import DeviceConfig
from central.devices.registry import DeviceTrust
from central.ingest.refusal import AckRef, Refusal
from wire.errors import WireError
from wire.ids import check_event_id
from wire.messages import EventKind, EventMessage
from wire.signing import canonical_json, verify_canonical
from wire.topics import Topic

__all__ = ["VerifiedEvent", "parse_json_object", "verify_event"]


@dataclass(frozen=True)
class VerifiedEvent:
    message: EventMessage
    manifest_json: str  # the RFC 8785 text the signature covers, kept as the record of what was signed


def parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refusal("malformed_json", f"{what} is not valid JSON ({len(payload)} bytes): {exc}") from None
    if not isinstance(body, dict):
        raise Refusal("malformed_json", f"{what} is JSON but not an object")
    return body


def _event_ref(manifest: dict[str, Any]) -> tuple[AckRef | None, EventKind | None]:
    """The event id and message kind to reject, if the body carries well-formed ones."""
    try:
        ref: AckRef | None = ("event", check_event_id(manifest.get("event_id")))  # type: ignore[arg-type]
    except WireError:
        ref = None
    raw_kind = manifest.get("kind")
    kind: EventKind | None = raw_kind if raw_kind in ("confirmed", "update", "cleared") else None
    return ref, kind


def verify_event(topic: Topic, payload: bytes, device: DeviceTrust | DeviceConfig | None) -> VerifiedEvent:
    """The checked event, or a Refusal; a Refusal names the event to reject once the device is known.

    `device`: the device's enrolled keys (central.devices), or one config entry (tools, tests).
    """
    body = parse_json_object(payload, "event")
    manifest = body.get("manifest")
    if not isinstance(manifest, dict):
        raise Refusal("invalid_event", "event has no manifest object")
    if device is None:
        # No ack: nobody vouches for this sender. If it is a real box someone forgot to enrol,
        # its spool keeps the evidence until it is.
        raise Refusal("unknown_device", f"device {topic.device!r} is not enrolled")
    trust = DeviceTrust.from_config(device) if isinstance(device, DeviceConfig) else device
    ref, kind = _event_ref(manifest)

    def refuse(reason: str, detail: str) -> Refusal:
        return Refusal(reason, detail, ack=ref, kind=kind)

    key_id = body.get("key_id")
    key = trust.key(key_id)
    if key is None:
        raise refuse(
            "unknown_key",
            f"key_id {key_id!r} is not an enrolled key of device {trust.device_id!r}",
        )
    if key.revoked:
        # Checked before the signature: whatever a revoked key signed proves nothing any more.
        raise refuse(
            "revoked_key",
            f"revoked key {key.key_id} of device {trust.device_id!r} (revoked {key.revoked_at}: {key.reason})",
        )
    signature = body.get("signature")
    try:
        canonical: bytes | None = canonical_json(manifest)  # computed once: checked here, kept below
    except WireError:
        canonical = None  # no canonical form, so no signature can cover it
    if (
        canonical is None
        or not isinstance(signature, str)
        or not verify_canonical(key.public_key, canonical, signature)
    ):
        raise refuse(
            "bad_signature", f"signature does not verify with the key of device {trust.device_id!r}"
        )
    try:
        message = EventMessage.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise refuse("invalid_event", f"signed event breaks the contract: {where}: {first['msg']}") from None
    m = message.manifest
    if (m.device_id, m.site, m.camera) != (topic.device, topic.site, topic.camera):
        raise refuse(
            "topic_mismatch",
            f"manifest of {m.device_id}/{m.site}/{m.camera} arrived on the topic of "
            f"{topic.device}/{topic.site}/{topic.camera}",
        )
    if key.site is not None and m.site != key.site:
        raise refuse(
            "site_not_allowed", f"device {trust.device_id!r} belongs to site {key.site!r}, not {m.site!r}"
        )
    return VerifiedEvent(message, canonical.decode())
