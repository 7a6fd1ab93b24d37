"""YAML config files validated by pydantic, with errors that name the file, the line and the key.

Both the edge's and the central's configs load through `load_yaml_model`, so an installer
who mistypes a key reads, for example:

    /etc/garbagewatch/edge.yaml:14: cameras.0.zones.0.polygon: at least 3 points are needed
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file that cannot be used; the message says what and where."""


def _key_lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, str(key.value))
            out[sub] = key.start_mark.line + 1
            _key_lines(value, sub, out)
            out[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _key_lines(item, (*path, str(i)), out)


def _line_of(lines: dict[tuple[str, ...], int], loc: tuple[str | int, ...]) -> int:
    """The line of the deepest part of `loc` that exists in the file (a missing key: its parent)."""
    parts = tuple(str(p) for p in loc)
    while parts and parts not in lines:
        parts = parts[:-1]
    return lines.get(parts, 1)


def describe(path: Path, exc: ValidationError, lines: dict[tuple[str, ...], int]) -> str:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = "unknown key (check its spelling and indentation)" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        out.append(f"{path}:{_line_of(lines, loc)}: {key}: {msg}")
    return "\n".join(out)


def load_yaml_model(path: Path | str, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read `path` as YAML and validate it as `model`; raise ConfigError with file:line: key: reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of keys")
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _key_lines(node, (), lines)
    ctx = {"base_dir": path.resolve().parent, **(context or {})}
    try:
        return model.model_validate(raw, context=ctx)
    except ValidationError as exc:
        raise ConfigError(describe(path, exc, lines)) from exc
