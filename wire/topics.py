"""The topic tree: gw/v1/{device}/... so a broker ACL can confine a device to its own subtree.

    gw/v1/{device}/status                                         retained availability (+ last will)
    gw/v1/{device}/stats                                          periodic statistics
    gw/v1/{device}/ack                                            central -> edge application acks
    gw/v1/{device}/{site}/{camera}/event                          signed event (confirmed/update/cleared)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/init             file transfer: announce (JSON)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/{offset}         file transfer: one segment (raw bytes)
    gw/v1/{device}/{site}/{camera}/file/{sha256}/fin/{size}       file transfer: all segments sent

A Topic is checked when it is made, whether built or parsed, so every Topic prints as a valid
topic, and every valid topic parses to the Topic that prints it back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

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

# Offsets and sizes in topics: ASCII digits, no leading zero (one spelling per number), at most
# 15 digits (far above any file the contract allows, and exact in a JSON number).
_NUMBER = re.compile(r"0|[1-9][0-9]{0,14}")
MAX_TOPIC_NUMBER = 10**15 - 1


class TopicKind(StrEnum):
    STATUS = "status"
    STATS = "stats"
    ACK = "ack"
    EVENT = "event"
    FILE_INIT = "file_init"
    FILE_SEGMENT = "file_segment"
    FILE_FIN = "file_fin"


_DEVICE_LEVEL = (TopicKind.STATUS, TopicKind.STATS, TopicKind.ACK)
_FILE_KINDS = (TopicKind.FILE_INIT, TopicKind.FILE_SEGMENT, TopicKind.FILE_FIN)


def _check_number(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TOPIC_NUMBER:
        raise WireError(f"{what} {value!r} is not an integer 0..{MAX_TOPIC_NUMBER}")


@dataclass(frozen=True)
class Topic:
    """One topic of the tree; only the fields its kind uses are set (the others stay None)."""

    kind: TopicKind
    device: str
    site: str | None = None
    camera: str | None = None
    file_sha256: str | None = None
    offset: int | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        kind = TopicKind(self.kind)  # ValueError for a kind that is not one
        object.__setattr__(self, "kind", kind)  # "status" given as a plain string prints all the same
        check_id(self.device, "device")
        camera_level = (self.site, self.camera, self.file_sha256, self.offset, self.size)
        if kind in _DEVICE_LEVEL:
            if any(v is not None for v in camera_level):
                raise WireError(f"a {kind.value} topic has no site, camera or file")
            return
        check_id(self.site, "site")  # type: ignore[arg-type]  # None is refused there
        check_id(self.camera, "camera")  # type: ignore[arg-type]
        if kind is TopicKind.EVENT:
            if (self.file_sha256, self.offset, self.size) != (None, None, None):
                raise WireError("an event topic has no file")
            return
        check_sha256(self.file_sha256, "file id")  # type: ignore[arg-type]
        if kind is TopicKind.FILE_SEGMENT:
            _check_number(self.offset, "offset")
        elif self.offset is not None:
            raise WireError(f"a {kind.value} topic has no offset")
        if kind is TopicKind.FILE_FIN:
            _check_number(self.size, "size")
        elif self.size is not None:
            raise WireError(f"a {kind.value} topic has no size")

    def __str__(self) -> str:
        base = f"{ROOT}/{self.device}"
        if self.kind in _DEVICE_LEVEL:
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
    return str(Topic(TopicKind.STATUS, device))


def stats_topic(device: str) -> str:
    return str(Topic(TopicKind.STATS, device))


def ack_topic(device: str) -> str:
    return str(Topic(TopicKind.ACK, device))


def event_topic(device: str, site: str, camera: str) -> str:
    return str(Topic(TopicKind.EVENT, device, site, camera))


def file_topic(
    kind: TopicKind, device: str, site: str, camera: str, sha256: str, *, offset: int = 0, size: int = 0
) -> str:
    """The init, segment (at `offset`) or fin (of `size` bytes) topic of one file transfer."""
    if kind not in _FILE_KINDS:
        raise WireError(f"{kind!r} is not a file transfer topic")
    return str(
        Topic(
            kind,
            device,
            site,
            camera,
            sha256,
            offset=offset if kind is TopicKind.FILE_SEGMENT else None,
            size=size if kind is TopicKind.FILE_FIN else None,
        )
    )


def _number(text: str, what: str, topic: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise WireError(
            f"{what} {text!r} in topic {topic!r} is not a non-negative integer "
            "(ASCII digits, no leading zero, at most 15 digits)"
        )
    return int(text)


def parse_topic(topic: str) -> Topic:
    """Parse and check a topic; raise WireError naming the bad part."""
    if not isinstance(topic, str):
        raise WireError(f"topic {topic!r} is not a string")
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
            return Topic(TopicKind.FILE_SEGMENT, device, site, camera, sha, offset=_number(tail[2], "offset", topic))
        if len(tail) == 4 and tail[2] == "fin":
            return Topic(TopicKind.FILE_FIN, device, site, camera, sha, size=_number(tail[3], "size", topic))
    raise WireError(f"topic {topic!r} has an unknown shape")
