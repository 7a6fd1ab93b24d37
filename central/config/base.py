"""What every section of the central's config shares: strict models, the error, file-relative paths."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo

__all__ = [
    "ConfigError",
    "Strict",
    "relative_to_file",
]


class ConfigError(ValueError):
    """A config file that cannot be used; the text names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def relative_to_file(value: Path | None, info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if value is None or value.is_absolute() or base is None:
        return value
    return Path(base) / value
