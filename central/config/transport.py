"""What comes in from the edge boxes: the MQTT broker, the devices the central trusts, size limits."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, PrivateAttr, field_validator, model_validator

from central.config.base import Strict, relative_to_file
from wire.errors import WireError
from wire.ids import check_id
from wire.messages import MAX_FILE_BYTES
from wire.signing import fingerprint, load_public_key, public_key_from_pem, public_key_pem

__all__ = [
    "BrokerConfig",
    "DeviceConfig",
    "LimitsConfig",
    "TlsConfig",
]


class TlsConfig(Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    _paths = field_validator("ca", "cert", "key")(relative_to_file)


class BrokerConfig(Strict):
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
    # Several central instances on one broker: each subscribes $share/<shared_group>/<filter>, so
    # the broker spreads the edges' messages over them (docs/central.md, "Several central instances").
    shared_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class DeviceConfig(Strict):
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

    _key_file = field_validator("public_key_file")(relative_to_file)

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


class LimitsConfig(Strict):
    max_file_bytes: int = Field(default=MAX_FILE_BYTES, ge=1, le=MAX_FILE_BYTES)
    # Refused payloads up to this size are kept in data_dir/quarantine; bigger ones (file
    # segments) are only recorded, since the edge keeps every file until it is acked.
    quarantine_payload_bytes: int = Field(default=64 * 1024, ge=0)
