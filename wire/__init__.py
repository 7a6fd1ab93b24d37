"""The wire contract between edge boxes and the central service (docs/protocol.md).

Both sides import this package and nothing else duplicates it: topics, message models,
identifiers, timestamps, the canonical encoding and the Ed25519 signature over evidence manifests.
"""

from wire.errors import WireError
from wire.ids import check_id, new_event_id
from wire.messages import (
    Ack,
    Availability,
    DetectionRecord,
    EventMessage,
    FileInit,
    FileRef,
    Manifest,
    ModelRef,
    Stats,
)
from wire.signing import (
    DeviceKey,
    canonical_json,
    fingerprint,
    load_public_key,
    public_key_from_pem,
    sign_manifest,
    verify_manifest,
)
from wire.timefmt import format_ts, parse_ts
from wire.topics import PROTOCOL_VERSION, ROOT, Topic, TopicKind, parse_topic

__all__ = [
    "PROTOCOL_VERSION",
    "ROOT",
    "Ack",
    "Availability",
    "DetectionRecord",
    "DeviceKey",
    "EventMessage",
    "FileInit",
    "FileRef",
    "Manifest",
    "ModelRef",
    "Stats",
    "Topic",
    "TopicKind",
    "WireError",
    "canonical_json",
    "check_id",
    "fingerprint",
    "format_ts",
    "load_public_key",
    "new_event_id",
    "parse_topic",
    "parse_ts",
    "public_key_from_pem",
    "sign_manifest",
    "verify_manifest",
]
