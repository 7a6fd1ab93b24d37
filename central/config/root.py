"""The whole config (`CentralConfig`, its sections checked against each other) and reading it from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from central.config.base import ConfigError, Strict, relative_to_file
from central.config.deadlines import CalendarConfig, CityConfig, EscalationConfig, WorkOrderConfig
from central.config.notify import NotifyConfig
from central.config.retention import RetentionConfig
from central.config.sites import SiteConfig
from central.config.transport import BrokerConfig, DeviceConfig, LimitsConfig

__all__ = [
    "CentralConfig",
    "load_config",
]


class CentralConfig(Strict):
    data_dir: Path
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    work_orders: WorkOrderConfig = Field(default_factory=WorkOrderConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    cities: list[CityConfig] = Field(default_factory=list)
    sites: list[SiteConfig] = Field(default_factory=list)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    _data_dir = field_validator("data_dir")(relative_to_file)

    @field_validator("devices")
    @classmethod
    def _unique_devices(cls, v: list[DeviceConfig]) -> list[DeviceConfig]:
        seen: set[str] = set()
        for d in v:
            if d.device_id in seen:
                raise ValueError(f"device {d.device_id!r} is listed twice")
            seen.add(d.device_id)
        return v

    @model_validator(mode="after")
    def _places(self) -> CentralConfig:
        cities = [c.id for c in self.cities]
        sites = [s.id for s in self.sites]
        for kind, ids in (("city", cities), ("site", sites)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{kind} {twice[0]!r} is listed twice")
        people = {p.id for p in self.notify.people}
        for site in self.sites:
            if site.city is not None and site.city not in cities:
                raise ValueError(f"site {site.id!r}: city {site.city!r} is not in cities")
            for role, members in site.roles.items():
                for m in members:
                    if m not in people:
                        raise ValueError(f"site {site.id!r}: roles.{role}: {m!r} is not in notify.people")
        return self

    def site(self, site_id: str) -> SiteConfig | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def city_of(self, site_id: str) -> CityConfig:
        """The site's city; 'default' or the first city for a site without one; built-in defaults last."""
        site = self.site(site_id)
        wanted = site.city if site is not None else None
        for c in self.cities:
            if c.id == wanted:
                return c
        if wanted is None:
            for c in self.cities:
                if c.id == "default":
                    return c
            if self.cities:
                return self.cities[0]
        return CityConfig(id="default")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "garbagewatch.db"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    @property
    def incoming_dir(self) -> Path:
        return self.data_dir / "incoming"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.device_id == device_id), None)


def _describe(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {key}: {msg}")
    return "\n".join(lines)


def load_config(path: Path | str) -> CentralConfig:
    """Read and validate a YAML config; raise ConfigError naming the file and the key."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    try:
        return CentralConfig.model_validate(raw, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from exc
