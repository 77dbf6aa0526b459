"""Load YAML into strict pydantic models, turning every problem into a ``ConfigError`` that names
the file, the line and the field. Nothing is started or written before a file loads cleanly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from primeguard.config.schema import LocatedValueError, PrimeguardConfig, SecretRef
from primeguard.domain.errors import ConfigError, YamlSourceError
from primeguard.safeyaml import load_checked, read_yaml_text

M = TypeVar("M", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise ConfigError(f"duplicate key {key!r}", location=f"line {key_node.start_mark.line + 1}")
        result[key] = loader.construct_object(value_node, deep=True)
        lines[str(key)] = key_node.start_mark.line + 1
    result["__lines__"] = lines
    result["__line__"] = node.start_mark.line + 1
    return result


class _Seq(list[Any]):
    """A constructed sequence that remembers the line of each item (dropped by ``_strip``)."""

    item_lines: list[int]


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    seq = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    seq.item_lines = [child.start_mark.line + 1 for child in node.value]
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in ("__lines__", "__line__")}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """Walk the raw (line-annotated) data along a pydantic error location; return the best line."""
    line = data.get("__line__") if isinstance(data, dict) else None
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            line = node.get("__lines__", {}).get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if isinstance(node, _Seq):
                line = node.item_lines[part]
            node = node[part]
            if isinstance(node, dict):
                line = node.get("__line__", line)
        elif isinstance(node, dict) and isinstance(part, str):
            continue  # not in the data: a union branch tag ("webhook") or a missing key; keep walking
        else:
            break
    return line


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with line annotations through the hardened reader
    (:mod:`primeguard.safeyaml`: 8 MiB cap, no anchors/aliases, bounded nesting); every problem is
    a ConfigError with the file and, where known, the line."""
    try:
        text = read_yaml_text(path)
        return load_checked(text, _LineLoader)
    except YamlSourceError as exc:
        raise ConfigError(exc.message, file=str(path),
                          location=f"line {exc.line}" if exc.line is not None else None) from None
    except ConfigError as exc:
        raise ConfigError(str(exc).split(": ", 1)[-1], file=str(path), location=exc.location) from exc


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Load ``path`` into ``model``; the first validation problem is raised with file:line."""
    p = Path(path)
    raw = read_yaml(p)
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level", file=str(p), location="line 1")
    try:
        # relative secret files are anchored at the file's own directory (see SecretRef)
        return model.model_validate(_strip(raw), context={"base_dir": p.resolve().parent})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedValueError):  # a cross-field check that knows its field
            loc = (*loc, *cause.loc)
        field = ".".join(str(x) for x in loc) or "(top level)"
        line = _line_of(raw, loc)
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{field}: {msg}{more}", file=str(p), location=f"line {line}" if line else None
        ) from None


def load_config(path: str | Path) -> PrimeguardConfig:
    """Load and validate the agent config."""
    return load_yaml_model(path, PrimeguardConfig)


def resolve_secret(ref: SecretRef, *, base_dir: Path | None = None) -> str:
    """Return a secret's value. Errors name the reference, never the value."""
    if ref.value is not None:
        return ref.value.get_secret_value()
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError(f"secret environment variable {ref.env} is not set")
        return value
    assert ref.file is not None
    fp = Path(ref.file)
    if not fp.is_absolute() and base_dir is not None:
        fp = base_dir / fp
    try:
        return fp.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {fp.name}: {exc.strerror}") from exc
