"""The topic tree: gw/v1/{device}/... so a broker ACL can confine a device to its own subtree.

    gw/v1/{device}/status                                         retained availability (+ last will)
    gw/v1/{device}/stats                                          periodic statistics
    gw/v1/{device}/ack                                            central -> edge application acks
    gw/v1/{device}/{site}/{camera}/event                          signed event (confirmed/update/cleared)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/init             file transfer: announce (JSON)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/{offset}         file transfer: one segment (raw bytes)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/fin/{size}       file transfer: all segments sent
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wire.errors import WireError
from wire.ids import check_id, check_sha256

PROTOCOL_VERSION = 1
ROOT = f"gw/v{PROTOCOL_VERSION}"

# What the central subscribes to (the device level is a wildcard; the topic's device id
# must match the signing key's device, which the central checks).
CENTRAL_SUBSCRIPTIONS = (
    f"{ROOT}/+/status",
    f"{ROOT}/+/stats",
    f"{ROOT}/+/+/+/event",
    f"{ROOT}/+/+/+/file/#",
)


class TopicKind(str, Enum):
    STATUS = "status"
    STATS = "stats"
    ACK = "ack"
    EVENT = "event"
    FILE_INIT = "file_init"
    FILE_SEGMENT = "file_segment"
    FILE_FIN = "file_fin"


@dataclass(frozen=True)
class Topic:
    kind: TopicKind
    device: str
    site: str | None = None
    camera: str | None = None
    file_sha256: str | None = None
    offset: int | None = None
    size: int | None = None

    def __str__(self) -> str:
        base = f"{ROOT}/{self.device}"
        if self.kind in (TopicKind.STATUS, TopicKind.STATS, TopicKind.ACK):
            return f"{base}/{self.kind.value}"
        cam = f"{base}/{self.site}/{self.camera}"
        if self.kind is TopicKind.EVENT:
            return f"{cam}/event"
        f = f"{cam}/file/{self.file_sha256}"
        if self.kind is TopicKind.FILE_INIT:
            return f"{f}/init"
        if self.kind is TopicKind.FILE_SEGMENT:
            return f"{f}/{self.offset}"
        return f"{f}/fin/{self.size}"


def status_topic(device: str) -> str:
    return str(Topic(TopicKind.STATUS, check_id(device, "device")))


def stats_topic(device: str) -> str:
    return str(Topic(TopicKind.STATS, check_id(device, "device")))


def ack_topic(device: str) -> str:
    return str(Topic(TopicKind.ACK, check_id(device, "device")))


def event_topic(device: str, site: str, camera: str) -> str:
    return str(Topic(TopicKind.EVENT, device, site, camera))


def file_topic(kind: TopicKind, device: str, site: str, camera: str, sha256: str, *, offset: int = 0,
               size: int = 0) -> str:
    return str(Topic(kind, device, site, camera, sha256, offset, size))


def _nonneg_int(text: str, what: str, topic: str) -> int:
    if not text.isdigit() or len(text) > 15:
        raise WireError(f"{what} {text!r} in topic {topic!r} is not a non-negative integer")
    return int(text)


def parse_topic(topic: str) -> Topic:
    """Parse and check a topic; raise WireError naming the bad part."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise WireError(f"topic {topic!r} is not under {ROOT}/")
    device = check_id(parts[2], "device")
    rest = parts[3:]
    if len(rest) == 1 and rest[0] in ("status", "stats", "ack"):
        return Topic(TopicKind(rest[0]), device)
    if len(rest) < 3:
        raise WireError(f"topic {topic!r} has an unknown shape")
    site = check_id(rest[0], "site")
    camera = check_id(rest[1], "camera")
    tail = rest[2:]
    if tail == ["event"]:
        return Topic(TopicKind.EVENT, device, site, camera)
    if len(tail) >= 3 and tail[0] == "file":
        sha = check_sha256(tail[1], "file id")
        if tail[2:] == ["init"]:
            return Topic(TopicKind.FILE_INIT, device, site, camera, sha)
        if len(tail) == 3:
            return Topic(TopicKind.FILE_SEGMENT, device, site, camera, sha,
                         offset=_nonneg_int(tail[2], "offset", topic))
        if len(tail) == 4 and tail[2] == "fin":
            return Topic(TopicKind.FILE_FIN, device, site, camera, sha, size=_nonneg_int(tail[3], "size", topic))
    raise WireError(f"topic {topic!r} has an unknown shape")
