"""How long evidence files are kept: the retention period, how often it is applied, batch size.

The rule itself (which file is due, legal holds) is central.retention's; docs/central.md,
"Retention and legal hold", says it in words.
"""

from __future__ import annotations

from pydantic import Field

from central.config.base import Strict

__all__ = ["RetentionConfig"]


class RetentionConfig(Strict):
    # Days after the last of a file's orders was closed or rejected (or, for a file of no order,
    # after it was stored) that the file is deleted. None (null in YAML): keep everything forever.
    evidence_days: int | None = Field(default=365, ge=1)
    sweep_s: float = Field(default=3600.0, gt=0)  # how often the retention sweep runs
    batch: int = Field(default=500, ge=1, le=100_000)  # files marked purged per transaction
