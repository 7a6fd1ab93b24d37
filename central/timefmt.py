"""Wall-clock time as the wire writes it: RFC 3339 UTC with milliseconds.

Every component takes a `Clock` (seconds since the epoch) so tests can drive time by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]

system_clock: Clock = time.time


def utc_iso(ts: float) -> str:
    """'2026-11-26T03:52:15.123Z' for a POSIX timestamp."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def utc_day(ts: float) -> str:
    """'20261126': the UTC day, as used in work order ids."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y%m%d")
