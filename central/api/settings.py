"""Settings of the API server and the audit checkpoints.

They belong in the central's YAML as `api:` and `audit:` sections. CentralConfig is strict, so
those keys must be declared there (`api: ApiSettings`, `audit: AuditSettings`: this module
imports nothing of the central at run time, so central/config/root.py can import it). Until they
are, `api_settings_of(config)` gives the defaults and the CLI flags override host and port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # no runtime import of central.config: central/config/root.py may import this module
    from central.config import CentralConfig

__all__ = ["ApiSettings", "AuditSettings", "api_settings_of", "audit_settings_of"]


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (tests)
    # A resident's photo: phones send 2-6 MB JPEGs; past this the request is refused with 413.
    max_photo_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Everything but the photo in an Open311 POST (description, address, contact fields).
    max_form_bytes: int = Field(default=64 * 1024, ge=1024)
    max_page: int = Field(default=1000, ge=1, le=10000)  # Open311's customary upper bound
    jurisdiction_id: str | None = None  # Open311: refused when given and not this
    agency_responsible: str = ""
    service_name: str = "Exposed garbage (暴露垃圾)"
    service_description: str = "Garbage left exposed in a public place: bags, piles, overflowing bins."
    # Links in Open311 media_url and in responses: the address city tools reach the API at.
    public_base_url: str = "http://127.0.0.1:8080"
    db_pool_size: int = Field(default=8, ge=1, le=64)
    # A report is filed at the nearest configured camera (or site) within this distance of its
    # lat/long; farther from all of them it is filed unassigned, for a person to register.
    report_match_radius_m: float = Field(default=150.0, gt=0)


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # How often the chain head is signed and published. It bounds how many of the newest rows
    # could vanish without verify-audit noticing.
    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    # central.audit.checkpoints.CHECKPOINT_TOPIC (spelled out: importing it would import central.config).
    checkpoint_topic: str = "gw/central/v1/audit/checkpoint"


def api_settings_of(config: CentralConfig) -> ApiSettings:
    """config.api as ApiSettings (whichever model class config.py declares it with); defaults if absent."""
    value = getattr(config, "api", None)
    return ApiSettings.model_validate(value.model_dump()) if isinstance(value, BaseModel) else ApiSettings()


def audit_settings_of(config: CentralConfig) -> AuditSettings:
    """config.audit as AuditSettings; defaults if absent."""
    value = getattr(config, "audit", None)
    return AuditSettings.model_validate(value.model_dump()) if isinstance(value, BaseModel) else AuditSettings()
