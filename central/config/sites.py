"""The places orders are about: sites, their cameras' locations, who answers for them."""

from __future__ import annotations

from pydantic import Field, field_validator

from central.config.base import Strict
from central.config.deadlines import LadderStepConfig, check_ladder
from wire.ids import check_id

__all__ = [
    "CameraPlaceConfig",
    "SiteConfig",
]


class CameraPlaceConfig(Strict):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str = ""


class SiteConfig(Strict):
    """A site: its city, where it is, who answers for it, and (optionally) its own ladder."""

    id: str
    city: str | None = None  # None: the city 'default' if configured, else the first city
    name: str = ""
    address: str = ""
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    roles: dict[str, list[str]] = Field(default_factory=dict)  # responsible, supervisor, district_lead, ...
    ladder: list[LadderStepConfig] | None = None
    cameras: dict[str, CameraPlaceConfig] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "site")

    _ladder = field_validator("ladder")(check_ladder)

    def place_of(self, camera: str) -> CameraPlaceConfig:
        """The camera's own location if configured, else the site's."""
        own = self.cameras.get(camera)
        if own is not None and (own.lat is not None or own.address):
            return own
        return CameraPlaceConfig(lat=self.lat, lon=self.lon, address=self.address)
