"""The central's configuration: one YAML file, strictly validated (unknown keys are refused).

Relative paths in the file (data_dir, key files, TLS files) are relative to the file itself.
Tests and the demo build a `CentralConfig` in code instead.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wire.errors import WireError
from wire.ids import check_id
from wire.messages import MAX_FILE_BYTES
from wire.signing import fingerprint, load_public_key, public_key_from_pem, public_key_pem

__all__ = [
    "DEFAULT_ROUTES",
    "NOTICE_KINDS",
    "BrokerConfig",
    "CalendarConfig",
    "CameraPlaceConfig",
    "CentralConfig",
    "ChannelConfig",
    "CityConfig",
    "ConfigError",
    "DeviceConfig",
    "EscalationConfig",
    "LadderStepConfig",
    "LimitsConfig",
    "NotifyConfig",
    "PersonConfig",
    "SiteConfig",
    "TlsConfig",
    "WorkOrderConfig",
    "load_config",
]


class ConfigError(ValueError):
    """A config file that cannot be used; the text names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_to_file(value: Path | None, info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if value is None or value.is_absolute() or base is None:
        return value
    return Path(base) / value


class TlsConfig(_Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    _paths = field_validator("ca", "cert", "key")(_relative_to_file)


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="garbagewatch-central", min_length=1, max_length=128)
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # How long the broker keeps the central's session (and queues QoS 1 messages for it) while
    # the central is down. A week covers a long outage; the edge spool covers the rest.
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)


class DeviceConfig(_Strict):
    """An edge box the central trusts: its id, its Ed25519 public key and (optionally) its one site."""

    device_id: str
    public_key_pem: str | None = None
    public_key_file: Path | None = None
    site: str | None = None

    _key: Ed25519PublicKey | None = PrivateAttr(default=None)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        return check_id(v, "device_id")

    @field_validator("site")
    @classmethod
    def _site(cls, v: str | None) -> str | None:
        return None if v is None else check_id(v, "site")

    _key_file = field_validator("public_key_file")(_relative_to_file)

    @model_validator(mode="after")
    def _load_key(self) -> DeviceConfig:
        if (self.public_key_pem is None) == (self.public_key_file is None):
            raise ValueError("give exactly one of public_key_pem and public_key_file")
        try:
            if self.public_key_pem is not None:
                self._key = public_key_from_pem(self.public_key_pem)
            else:
                assert self.public_key_file is not None
                self._key = load_public_key(self.public_key_file)
        except WireError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @classmethod
    def for_key(cls, device_id: str, public_key: Ed25519PublicKey, site: str | None = None) -> DeviceConfig:
        return cls(device_id=device_id, public_key_pem=public_key_pem(public_key), site=site)

    @property
    def public_key(self) -> Ed25519PublicKey:
        assert self._key is not None  # set by the validator
        return self._key

    @property
    def key_id(self) -> str:
        return fingerprint(self.public_key)


def _check_apprise_url(url: str) -> str:
    import apprise  # imported here: it is slow to import and only this check and the sender need it

    if not apprise.Apprise().add(url):
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        raise ValueError(f"Apprise does not understand this {scheme}:// URL")
    return url


# What the case flow tells people about. 'overdue' and 'still_overdue' go up the escalation
# ladder instead of through routes.
NOTICE_KINDS = (
    "opened",
    "dispatched",
    "resolved",
    "reopened",
    "closed",
    "rejected",
    "reminder",
    "overdue",
    "still_overdue",
    "camera_offline",
    "extension_requested",
    "extension_decided",
)

# Who hears what: notice kind -> roles. A role is looked up in the order's site first, then in
# notify.roles; 'assignee' is the order's assignee.
DEFAULT_ROUTES: dict[str, list[str]] = {
    "opened": ["responsible"],
    "dispatched": ["assignee"],
    "resolved": [],
    "reopened": ["responsible", "assignee", "supervisor"],
    "closed": ["responsible", "assignee"],
    "rejected": ["responsible"],
    "reminder": ["responsible", "assignee"],
    "camera_offline": ["responsible"],
    "extension_requested": ["supervisor"],
    "extension_decided": ["assignee", "responsible"],
}


class ChannelConfig(_Strict):
    """One way to reach a person: an Apprise URL, and whether the snapshot may go along."""

    url: str
    # Photos of streets show people: attach them only where the channel is private enough.
    attach_snapshot: bool = False

    _url = field_validator("url")(_check_apprise_url)


class PersonConfig(_Strict):
    id: str
    name: str = ""
    channels: list[ChannelConfig] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "person id")


class NotifyConfig(_Strict):
    # Apprise URLs (mailto://, dingtalk://, wecombot://, feishu://, ntfy://, json://, ...) that
    # hear every notice (a control room's feed). They often hold tokens, so the database refers
    # to them by a hash, never by the URL.
    urls: list[str] = Field(default_factory=list)
    people: list[PersonConfig] = Field(default_factory=list)
    roles: dict[str, list[str]] = Field(default_factory=dict)  # role -> person ids, for every site
    routes: dict[str, list[str]] = Field(default_factory=dict)  # kind -> roles, over DEFAULT_ROUTES
    console_url: str = "http://127.0.0.1:8000"
    first_retry_s: float = Field(default=5.0, gt=0)
    max_retry_s: float = Field(default=600.0, gt=0)
    # An outage must lose nothing: at the max_retry_s cap, 1000 attempts keep trying for about a week.
    max_attempts: int = Field(default=1000, ge=1)
    poll_s: float = Field(default=1.0, gt=0)
    # One message per recipient and site at most every group_s: what comes in between is
    # gathered into the next one (0: every notice is its own message).
    group_s: float = Field(default=300.0, ge=0)
    # The same kind of notice about the same order reaches a recipient at most once per repeat_s.
    repeat_s: float = Field(default=3600.0, ge=0)
    max_items: int = Field(default=20, ge=1)  # orders spelled out in one message; the rest are counted

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for i, url in enumerate(v):
            try:
                _check_apprise_url(url)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
        return v

    @field_validator("routes")
    @classmethod
    def _routes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(DEFAULT_ROUTES))
        if unknown:
            raise ValueError(f"unknown notice kind(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_ROUTES)}")
        return v

    @model_validator(mode="after")
    def _people(self) -> NotifyConfig:
        ids = [p.id for p in self.people]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"person {twice[0]!r} is listed twice")
        for role, members in self.roles.items():
            for m in members:
                if m not in ids:
                    raise ValueError(f"roles.{role}: {m!r} is not in notify.people")
        return self

    def route(self, kind: str) -> list[str]:
        return self.routes.get(kind, DEFAULT_ROUTES.get(kind, []))

    def person(self, person_id: str) -> PersonConfig | None:
        return next((p for p in self.people if p.id == person_id), None)

    def all_urls(self) -> list[str]:
        """Every Apprise URL the sender must know: the feeds and every person's channels."""
        urls = list(self.urls)
        for p in self.people:
            urls.extend(c.url for c in p.channels if c.url not in urls)
        return urls


def _check_limits(v: dict[str, float]) -> dict[str, float]:
    for code, hours in v.items():
        if not hours > 0:
            raise ValueError(f"{code}: the limit must be > 0 working hours")
    return v


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.strip().partition(":")
    if not (h.isdigit() and m.isdigit() and len(m) == 2) or not (0 <= int(h) <= 24 and 0 <= int(m) < 60):
        raise ValueError(f"{hhmm!r} is not HH:MM")
    total = int(h) * 60 + int(m)
    if total > 1440:
        raise ValueError(f"{hhmm!r} is after 24:00")
    return total


def _office_span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    a, b = _minutes(start), _minutes(end)
    if not a < b:
        raise ValueError(f"{text!r} ends before it starts")
    return a, b


class CityConfig(_Strict):
    """Where deadlines are counted: time zone, office hours, holidays, event code and limits."""

    id: str
    timezone: str = "Asia/Shanghai"
    # "HH:MM-HH:MM" spans of a workday; [] means the whole day.
    office_hours: list[str] = Field(default_factory=lambda: ["08:30-12:00", "13:30-17:30"])
    holidays: Literal["chinese", "weekdays", "every_day"] = "chinese"
    event_code: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,16}$")
    limits_hours: dict[str, float] = Field(default_factory=dict)  # event code -> working hours

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "city id")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        spans = sorted(_office_span(x) for x in v)
        if any(nxt[0] < cur[1] for cur, nxt in itertools.pairwise(spans)):
            raise ValueError("office hours overlap")
        return v

    _limits = field_validator("limits_hours")(_check_limits)

    def spans(self) -> list[tuple[int, int]]:
        """Office hours as (start, end) minutes after midnight."""
        return sorted(_office_span(x) for x in self.office_hours)


class CalendarConfig(_Strict):
    # Dates chinese-calendar does not know yet (next year's holidays are announced in November)
    # or that a city handles differently: "2027-02-06: workday", "2027-01-01: holiday".
    overrides: dict[date, Literal["workday", "holiday"]] = Field(default_factory=dict)


class LadderStepConfig(_Strict):
    role: str = Field(min_length=1)
    after_s: float = Field(default=0.0, ge=0)  # working seconds after the due time


def _default_ladder() -> list[LadderStepConfig]:
    return [
        LadderStepConfig(role="responsible", after_s=0.0),
        LadderStepConfig(role="supervisor", after_s=3600.0),
        LadderStepConfig(role="district_lead", after_s=4 * 3600.0),
    ]


def _check_ladder(v: list[LadderStepConfig] | None) -> list[LadderStepConfig] | None:
    if v is not None:
        delays = [s.after_s for s in v]
        if delays != sorted(delays):
            raise ValueError("the delays must not decrease from one level to the next")
    return v


class EscalationConfig(_Strict):
    ladder: list[LadderStepConfig] = Field(default_factory=_default_ladder)
    reminder_before_s: float = Field(default=1800.0, ge=0)  # working seconds before due; 0: none
    repeat_s: float = Field(default=4 * 3600.0, ge=0)  # the top of the ladder again; 0: once
    camera_offline_s: float = Field(default=1800.0, gt=0)  # offline this long: the site hears of it
    sweep_s: float = Field(default=30.0, gt=0)  # how often deadlines and cameras are checked

    _ladder = field_validator("ladder")(_check_ladder)


class CameraPlaceConfig(_Strict):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str = ""


class SiteConfig(_Strict):
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

    _ladder = field_validator("ladder")(_check_ladder)

    def place_of(self, camera: str) -> CameraPlaceConfig:
        """The camera's own location if configured, else the site's."""
        own = self.cameras.get(camera)
        if own is not None and (own.lat is not None or own.address):
            return own
        return CameraPlaceConfig(lat=self.lat, lon=self.lon, address=self.address)


class WorkOrderConfig(_Strict):
    event_code: str = Field(default="0102", pattern=r"^[0-9A-Za-z_-]{1,16}$")  # a city may set its own
    deadline_hours: float = Field(default=4.0, gt=0)  # working hours, for codes not in limits_hours
    limits_hours: dict[str, float] = Field(default_factory=dict)  # event code -> working hours
    # Garbage back at a spot within this long after its order closed reopens that order; later it
    # opens a new order linked to the last one (the spot's recurrence count goes up either way).
    reopen_window_s: float = Field(default=24 * 3600.0, ge=0)
    # An order resolved by hand waits for the camera; garbage the camera still sees this long
    # after the resolution reopens it.
    resolve_grace_s: float = Field(default=600.0, ge=0)

    _limits = field_validator("limits_hours")(_check_limits)


class LimitsConfig(_Strict):
    max_file_bytes: int = Field(default=MAX_FILE_BYTES, ge=1, le=MAX_FILE_BYTES)
    # Refused payloads up to this size are kept in data_dir/quarantine; bigger ones (file
    # segments) are only recorded, since the edge keeps every file until it is acked.
    quarantine_payload_bytes: int = Field(default=64 * 1024, ge=0)


class CentralConfig(_Strict):
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

    _data_dir = field_validator("data_dir")(_relative_to_file)

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
