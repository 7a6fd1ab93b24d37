"""The protocol's timestamps: RFC 3339 UTC with milliseconds and a 'Z', e.g. "2026-11-26T03:52:15.123Z".

Milliseconds are truncated, not rounded, so a time never prints as a later second than it is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from wire.errors import WireError

# fullmatch, ASCII digits only: "$" would accept a trailing newline, "\d" any Unicode digit.
_TS = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{3})Z")


def format_ts(epoch: float) -> str:
    """'2026-11-26T03:52:15.123Z' for seconds since the epoch."""
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> float:
    """Seconds since the epoch for a protocol timestamp; WireError if `text` is not one."""
    match = _TS.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise WireError(f"timestamp {text!r} is not RFC 3339 UTC with milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise WireError(f"timestamp {text!r} is not a valid date and time: {exc}") from exc
    # Integer milliseconds first: the float is the nearest one to the exact instant.
    return (int(whole.timestamp()) * 1000 + int(match.group(2))) / 1000
