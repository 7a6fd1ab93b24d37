"""The central's configuration: one YAML file, strictly validated (unknown keys are refused).

Relative paths in the file (data_dir, key files, TLS files) are relative to the file itself.
Tests and the demo build a `CentralConfig` in code instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    "BrokerConfig",
    "CentralConfig",
    "ConfigError",
    "DeviceConfig",
    "LimitsConfig",
    "NotifyConfig",
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


class NotifyConfig(_Strict):
    # Apprise URLs (mailto://, dingtalk://, wecombot://, feishu://, json://, ...). They often hold
    # tokens, so the database refers to them by a hash, never by the URL.
    urls: list[str] = Field(default_factory=list)
    console_url: str = "http://127.0.0.1:8000"
    first_retry_s: float = Field(default=5.0, gt=0)
    max_retry_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    poll_s: float = Field(default=1.0, gt=0)

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        import apprise  # imported here: it is slow to import and only this check and the sender need it

        for i, url in enumerate(v):
            if not apprise.Apprise().add(url):
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ValueError(f"item {i}: Apprise does not understand this {scheme}:// URL")
        return v


class WorkOrderConfig(_Strict):
    event_code: str = Field(default="0102", pattern=r"^[0-9A-Za-z_-]{1,16}$")
    deadline_hours: float = Field(default=4.0, gt=0)


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
