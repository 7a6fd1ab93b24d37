"""Identifiers that travel in topics and become path components: checked, never trusted."""

from __future__ import annotations

import re
import secrets
import time

from wire.errors import WireError

# Lower-case letters, digits, '-' and '_': safe as an MQTT topic level (no '+', '#', '/')
# and as a file name (no '.', so no '..' either). Always matched with fullmatch: a pattern
# ending in '$' would also accept a trailing newline.
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_EVENT_ID = re.compile(r"[0-9a-z]{8,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_id(value: str, what: str) -> str:
    """Return `value` if it is a valid device, site, camera or zone id; raise WireError otherwise."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise WireError(
            f"{what} {value!r} is not a valid id: use 1-63 of a-z, 0-9, '-', '_', starting with a letter or digit"
        )
    return value


def check_event_id(value: str) -> str:
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise WireError(f"event id {value!r} is not 8-64 lower-case letters or digits")
    return value


def check_sha256(value: str, what: str = "sha256") -> str:
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise WireError(f"{what} {value!r} is not 64 lower-case hex digits")
    return value


def new_event_id(now: float | None = None) -> str:
    """A sortable, unique event id: 12 hex digits of epoch milliseconds, then 16 random hex digits."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{ms:012x}{secrets.token_hex(8)}"
