"""What a detector file is: its name, sha256, input size and class names.

The sha256 goes into every signed manifest, so a work order names the exact model that saw the
garbage. Ultralytics writes the rest as ONNX metadata strings (`names`, `imgsz`); they are parsed
with `ast.literal_eval`, which reads literals only: a model file is input, never code to run.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

# The wire's DetectionRecord.class_name pattern: warn at load time rather than at the first event.
_WIRE_CLASS_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


class ModelError(ValueError):
    """The model file cannot be used: unreadable, or its shape or metadata make no sense."""


class _NodeArg(Protocol):
    name: str
    shape: list[Any]
    type: str


class _ModelMeta(Protocol):
    custom_metadata_map: dict[str, str]


class _Session(Protocol):
    """The part of onnxruntime.InferenceSession that ModelInfo reads."""

    def get_inputs(self) -> list[_NodeArg]: ...
    def get_outputs(self) -> list[_NodeArg]: ...
    def get_modelmeta(self) -> _ModelMeta: ...


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    sha256: str
    input_hw: tuple[int, int]
    class_names: tuple[str, ...]
    input_name: str
    input_type: str  # 'tensor(float)' or 'tensor(float16)' for half-precision exports
    batch_dynamic: bool
    end_to_end: bool | None  # ultralytics 'end2end' metadata: outputs (1, N, 6) boxes; None if unsaid

    @classmethod
    def from_session(cls, path: Path, session: _Session) -> ModelInfo:
        meta = dict(session.get_modelmeta().custom_metadata_map)
        model_input = session.get_inputs()[0]
        shape = list(model_input.shape)
        if len(shape) != 4:
            raise ModelError(f"{path}: input {model_input.name!r} has shape {shape}, expected N x 3 x H x W")
        height, width = shape[2], shape[3]
        if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
            input_hw = (height, width)  # the graph itself says; metadata could only disagree
        elif "imgsz" in meta:
            input_hw = parse_imgsz(meta["imgsz"], path)
        else:
            raise ModelError(f"{path}: input size is dynamic ({shape}) and there is no 'imgsz' metadata")
        class_names = parse_names(meta["names"], path) if "names" in meta else ()
        for class_name in class_names:
            if not _WIRE_CLASS_NAME.match(class_name):
                log.warning("%s: class name %r does not fit the wire's [a-z0-9_]{1,32}", path, class_name)
        end2end = meta.get("end2end")
        return cls(
            path=path,
            name=path.stem,
            sha256=file_sha256(path),
            input_hw=input_hw,
            class_names=class_names,
            input_name=model_input.name,
            input_type=model_input.type,
            batch_dynamic=not (isinstance(shape[0], int) and shape[0] > 0),
            end_to_end=None if end2end is None else end2end.strip().lower() == "true",
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _literal(text: str, key: str, path: Path) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ModelError(f"{path}: metadata {key!r} is not a Python literal: {text[:80]!r}") from exc


def parse_names(text: str, path: Path = Path("<model>")) -> tuple[str, ...]:
    """Class names from ultralytics' 'names' metadata, e.g. "{0: 'garbage', 1: 'garbage_bin'}".

    Ids must be 0..n-1 (a list literal is accepted too), since the output's class columns are
    indexed that way.
    """
    value = _literal(text, "names", path)
    if isinstance(value, list | tuple):
        value = dict(enumerate(value))
    if not isinstance(value, dict) or not all(
        isinstance(k, int) and isinstance(v, str) for k, v in value.items()
    ):
        raise ModelError(f"{path}: metadata 'names' is not a {{int: str}} mapping: {text[:80]!r}")
    if sorted(value) != list(range(len(value))):
        raise ModelError(f"{path}: metadata 'names' ids are not 0..{len(value) - 1}: {sorted(value)[:10]}")
    return tuple(value[i] for i in range(len(value)))


def parse_imgsz(text: str, path: Path = Path("<model>")) -> tuple[int, int]:
    """Input (h, w) from ultralytics' 'imgsz' metadata: "[384, 640]" (h, w) or "640" (square)."""
    value = _literal(text, "imgsz", path)
    if isinstance(value, int):
        value = [value, value]
    if (
        not isinstance(value, list | tuple)
        or len(value) not in (1, 2)
        or not all(isinstance(v, int) and 0 < v <= 8192 for v in value)
    ):
        raise ModelError(f"{path}: metadata 'imgsz' is not [h, w]: {text[:80]!r}")
    return (value[0], value[-1])
