"""The edge box's config: one YAML file per box, validated; unknown keys are refused.

    garbagewatch edge check-config /etc/garbagewatch/edge.yaml

See configs/edge.example.yaml for every key with its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edge.events import ExposureConfig
from edge.zones import Zone, ZoneFilter
from garbagewatch.configfile import ConfigError, load_yaml_model
from wire.ids import check_id

__all__ = ["CameraConfig", "ConfigError", "EdgeConfig", "default_model_path", "load_edge_config"]

Seconds = Annotated[float, Field(gt=0, le=86400)]


def default_model_path() -> Path:
    """The detector shipped in the package (models/garbagewatch.onnx): no download, ever."""
    import models

    return Path(models.__file__).resolve().parent / "garbagewatch.onnx"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None or value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) / value) if base else value


class TlsConfig(_Strict):
    ca: Path
    cert: Path
    key: Path

    _paths = field_validator("ca", "cert", "key")(_resolve)


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: TlsConfig | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    session_expiry_seconds: int = Field(default=86400, ge=0)
    ack_timeout_seconds: Seconds = 10.0


class SpoolConfig(_Strict):
    dir: Path = Path("/var/lib/garbagewatch/spool")
    quota_mb: int = Field(default=2048, ge=16)

    _dir = field_validator("dir")(_resolve)


class DetectorConfig(_Strict):
    model: Path | None = None  # None: the shipped models/garbagewatch.onnx
    confidence: float = Field(default=0.35, gt=0, lt=1)
    per_class_confidence: dict[str, float] = Field(default_factory=dict)
    iou: float = Field(default=0.45, gt=0, le=1)
    threads: int | None = Field(default=None, ge=1, le=64)

    _model = field_validator("model")(_resolve)

    @property
    def model_path(self) -> Path:
        return self.model or default_model_path()


class ExposureSettings(_Strict):
    confirm_seconds: Seconds = 60.0
    confirm_ratio: float = Field(default=0.6, gt=0, le=1)
    clear_seconds: Seconds = 120.0
    update_seconds: Seconds = 300.0
    match_iou: float = Field(default=0.3, gt=0, le=1)

    def build(self) -> ExposureConfig:
        return ExposureConfig(
            confirm_seconds=self.confirm_seconds, confirm_ratio=self.confirm_ratio,
            clear_seconds=self.clear_seconds, update_seconds=self.update_seconds, match_iou=self.match_iou,
            max_gap_seconds=max(30.0, 3 * self.confirm_seconds / 10),
        )


class EvidenceConfig(_Strict):
    preroll_seconds: Seconds = 10.0
    postroll_seconds: Seconds = 5.0
    jpeg_quality: int = Field(default=90, ge=30, le=100)
    max_buffer_mb: int = Field(default=64, ge=4)


class StreamConfig(_Strict):
    open_timeout_seconds: Seconds = 10.0
    read_timeout_seconds: Seconds = 5.0
    reconnect_max_seconds: Seconds = 5.0


class ZoneConfig(_Strict):
    name: str
    polygon: list[tuple[float, float]] = Field(default=[(0, 0), (1, 0), (1, 1), (0, 1)], min_length=3)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_id(v, "zone")

    @field_validator("polygon")
    @classmethod
    def _unit(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in v):
            raise ValueError("polygon points are fractions of the frame: each x and y in [0, 1]")
        return v


class CameraConfig(_Strict):
    id: str
    url: str = Field(min_length=1)
    zones: list[ZoneConfig] = Field(default_factory=lambda: [ZoneConfig(name="all")], min_length=1)
    masks: list[list[tuple[float, float]]] = Field(default_factory=list)
    min_box_area: float = Field(default=0.0, ge=0, lt=1)  # fraction of the frame
    exposed_classes: list[str] = Field(default_factory=lambda: ["garbage", "overflow"], min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "camera")

    @model_validator(mode="after")
    def _unique_zones(self) -> CameraConfig:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"camera {self.id}: zone names must be unique, got {names}")
        return self

    def zone_filter(self) -> ZoneFilter:
        return ZoneFilter(
            zones=tuple(Zone(z.name, tuple(z.polygon)) for z in self.zones),
            masks=tuple(tuple(m) for m in self.masks),
            min_box_area=self.min_box_area,
            exposed_classes=frozenset(self.exposed_classes),
        )


class EdgeConfig(_Strict):
    device_id: str
    site: str
    key_file: Path
    analysis_interval_seconds: Seconds = 2.0
    stats_interval_seconds: Seconds = 60.0
    broker: BrokerConfig = BrokerConfig()
    spool: SpoolConfig = SpoolConfig()
    detector: DetectorConfig = DetectorConfig()
    exposure: ExposureSettings = ExposureSettings()
    evidence: EvidenceConfig = EvidenceConfig()
    stream: StreamConfig = StreamConfig()
    cameras: list[CameraConfig] = Field(min_length=1)

    _key = field_validator("key_file")(_resolve)

    @field_validator("device_id", "site")
    @classmethod
    def _ids(cls, v: str, info: ValidationInfo) -> str:
        return check_id(v, info.field_name or "id")

    @model_validator(mode="after")
    def _unique_cameras(self) -> EdgeConfig:
        ids = [c.id for c in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique, got {ids}")
        return self


def load_edge_config(path: Path | str, **overrides: Any) -> EdgeConfig:
    """Load and validate; raise ConfigError('FILE:LINE: key: reason')."""
    config = load_yaml_model(path, EdgeConfig)
    return config.model_copy(update=overrides) if overrides else config
