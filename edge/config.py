"""The edge box's config: one YAML file per box, validated; unknown keys are refused.

    garbagewatch edge check-config /etc/garbagewatch/edge.yaml

See configs/edge.example.yaml for every key with its default.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from edge.events import ExposureConfig
from edge.zones import Zone, ZoneFilter, polygon
from garbagewatch.configfile import ConfigError, load_yaml_model
from wire.ids import check_id

__all__ = [
    "CameraConfig", "ConfigError", "EdgeConfig", "ModelVariant", "default_model_path", "load_edge_config",
    "model_class_names",
]

Seconds = Annotated[float, Field(gt=0, le=86400)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


def _unit_polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return list(polygon(points))


# Fractions of the frame: at least 3 finite points, each x and y in [0, 1].
UnitPolygon = Annotated[list[tuple[float, float]], AfterValidator(_unit_polygon)]


ModelVariant = Literal["auto", "fp32", "int8"]
SHIPPED_MODEL_FILES: dict[str, str] = {"fp32": "garbagewatch.onnx", "int8": "garbagewatch-int8.onnx"}


def default_model_path(variant: ModelVariant = "auto") -> Path:
    """A detector shipped in the package (models/): no download, ever.

    `auto` is the int8 copy where this CPU has int8 dot-product instructions (about twice the
    float model's speed there, at the same accuracy: models/README.md), the float model elsewhere.
    """
    import models

    if variant == "auto":
        from edge.detect.cpu_features import int8_support

        variant = "int8" if int8_support().fast else "fp32"
    return Path(models.__file__).resolve().parent / SHIPPED_MODEL_FILES[variant]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None or value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) / value) if base else value


def _readable(value: Path | None, info: ValidationInfo) -> Path | None:
    """With context check_files=True (check-config, run): the file must exist and be readable."""
    value = _resolve(value, info)
    if value is None or not _checking_files(info):
        return value
    try:
        with open(value, "rb"):
            pass
    except FileNotFoundError:
        hint = " (make it with: garbagewatch edge keygen --out DIR)" if info.field_name == "key_file" else ""
        raise ValueError(f"no such file: {value}{hint}") from None
    except PermissionError:
        raise ValueError(f"cannot read {value}: permission denied (run as root, or check its group)") from None
    except OSError as exc:
        raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
    return value


def _checking_files(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("check_files"))


Located = list[tuple[tuple[str | int, ...], str]]  # (location under the validated field, reason)


def _located(errors: Located) -> ValidationError:
    """Errors at locations of our choosing, which the loader turns into file:line: key lines.

    Raised in a validator, a ValidationError keeps its locations, nested under the field's.
    """
    return ValidationError.from_exception_data("config", [
        InitErrorDetails(type=PydanticCustomError("config", "{reason}", {"reason": reason}), loc=loc, input=None)
        for loc, reason in errors])


def _unique(items: Sequence[Any], attr: str, what: str) -> None:
    """Refuse repeated ids, located at the repeat (`cameras.2.id`) so the error names its line."""
    first: dict[str, int] = {}
    errors: Located = []
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in first:
            errors.append(((i, attr), f"{what} '{value}' is used already (item {first[value]}): ids must be unique"))
        first.setdefault(value, i)
    if errors:
        raise _located(errors)


class TlsConfig(_Strict):
    ca: Path
    cert: Path
    key: Path

    _paths = field_validator("ca", "cert", "key")(_readable)

    @model_validator(mode="after")
    def _loads(self, info: ValidationInfo) -> TlsConfig:
        """On the box: the CA, certificate and key must load and the key must match the certificate."""
        if _checking_files(info):
            try:
                ssl.create_default_context(cafile=str(self.ca)).load_cert_chain(str(self.cert), str(self.key))
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"the TLS files do not load: {exc}") from None
        return self


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
    model: Path | None = None  # None: a model shipped in models/, chosen by `variant`
    variant: ModelVariant = "auto"  # which shipped model, when `model` is None
    confidence: float = Field(default=0.35, gt=0, lt=1)
    per_class_confidence: dict[str, Fraction] = Field(default_factory=dict)
    iou: float = Field(default=0.45, gt=0, le=1)
    threads: int | None = Field(default=None, ge=1, le=64)

    _model = field_validator("model")(_readable)

    @property
    def model_path(self) -> Path:
        return self.model or default_model_path(self.variant)


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
    polygon: UnitPolygon = Field(default=[(0, 0), (1, 0), (1, 1), (0, 1)])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_id(v, "zone")


class CameraConfig(_Strict):
    id: str
    url: str = Field(min_length=1)
    zones: list[ZoneConfig] = Field(default_factory=lambda: [ZoneConfig(name="all")], min_length=1)
    masks: list[UnitPolygon] = Field(default_factory=list)
    min_box_area: float = Field(default=0.0, ge=0, lt=1)  # fraction of the frame
    exposed_classes: list[str] = Field(default_factory=lambda: ["garbage", "overflow"], min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "camera")

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, v: list[ZoneConfig]) -> list[ZoneConfig]:
        _unique(v, "name", "zone name")
        return v

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
    # On SIGTERM: how long the uplink keeps sending what is spooled before going offline (the
    # rest stays in the spool for the next start). The unit's TimeoutStopSec must exceed it.
    drain_timeout_seconds: float = Field(default=20.0, ge=0, le=600)
    broker: BrokerConfig = BrokerConfig()
    spool: SpoolConfig = SpoolConfig()
    detector: DetectorConfig = DetectorConfig()
    exposure: ExposureSettings = ExposureSettings()
    evidence: EvidenceConfig = EvidenceConfig()
    stream: StreamConfig = StreamConfig()
    cameras: list[CameraConfig] = Field(min_length=1)

    _key = field_validator("key_file")(_readable)

    @field_validator("device_id", "site")
    @classmethod
    def _ids(cls, v: str, info: ValidationInfo) -> str:
        return check_id(v, info.field_name or "id")

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, v: list[CameraConfig]) -> list[CameraConfig]:
        _unique(v, "id", "camera id")
        return v

    @model_validator(mode="after")
    def _classes_of_the_model(self, info: ValidationInfo) -> EdgeConfig:
        """On the box: class names in the config must be the model's (a typo would never match)."""
        if not _checking_files(info):
            return self
        try:
            names = model_class_names(self.detector.model_path)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise _located([(("detector", "model"), f"cannot load {self.detector.model_path}: {exc}")]) from None
        if not names:
            return self  # a model without class-name metadata: nothing to check against
        known = f"the model's classes are {', '.join(names)}"
        errors: Located = [
            (("detector", "per_class_confidence", name), f"no class '{name}': {known}")
            for name in self.detector.per_class_confidence if name not in names]
        errors += [(("cameras", i, "exposed_classes", j), f"no class '{name}': {known}")
                   for i, cam in enumerate(self.cameras)
                   for j, name in enumerate(cam.exposed_classes) if name not in names]
        if errors:
            raise _located(errors)
        return self


def model_class_names(path: Path) -> tuple[str, ...]:
    """The class names an ONNX detector declares (loads it: imports onnxruntime)."""
    import onnxruntime as ort

    from edge.detect.model_info import ModelInfo

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ModelInfo.from_session(path, session).class_names


def load_edge_config(path: Path | str, *, check_files: bool = False, **overrides: Any) -> EdgeConfig:
    """Load and validate; raise ConfigError('FILE:LINE: key: reason').

    check_files: also check against the files on this box (what `check-config` and `run` do; off
    for a config checked elsewhere): the key file, the TLS files and the model must be readable,
    the TLS files must load, and class names must be the model's.
    """
    config = load_yaml_model(path, EdgeConfig, context={"check_files": check_files})
    return config.model_copy(update=overrides) if overrides else config
