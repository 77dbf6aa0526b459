"""Read policy YAML strictly and remember where every value came from.

Policy files are reviewed by compliance, so every error must point at a line. We parse with a
``SafeLoader`` subclass, walk the composed node tree once to map each *path* (a tuple of mapping
keys and sequence indexes, the same shape pydantic reports in an error ``loc``) to its line, and
construct plain Python data from the same nodes.

Scalars are read more strictly than YAML 1.1 would:

- Only ``true``/``false`` are booleans. ``yes``/``no``/``on``/``off`` stay strings, so a boolean
  field given ``yes`` is rejected instead of silently meaning ``True`` (and a label ``"no"`` stays
  a label: the "Norway problem").
- Only plain decimal digits are integers. ``0x...`` stays a string: an unquoted EVM address would
  otherwise become an int and lose its checksum.
- Numbers with a fraction become ``Decimal`` from their text, never via ``float``: a limit written
  ``250000.10`` means exactly that.
- Duplicate mapping keys are an error (YAML would keep the last one silently, which could hide an
  allowlist edit in review).
- Anchors and aliases are refused, files are capped at 8 MiB and nesting is bounded: see
  :mod:`primeguard.safeyaml`, the one hardened reader every YAML file goes through.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from primeguard.domain.errors import YamlSourceError
from primeguard.safeyaml import load_checked

__all__ = ["Path_", "Source", "YamlSourceError", "parse"]

Path_ = tuple[str | int, ...]

_INT_RE = re.compile(r"^[-+]?[0-9][0-9_]*$")
_DEC_RE = re.compile(r"^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed file: its data, its text and the line of every path."""

    name: str
    text: str
    data: Any
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int:
        """Best line for ``path``: the deepest prefix that exists in the file (1 for the top)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.lines.get((), 1)

    def line_of_loc(self, loc: tuple[Any, ...]) -> int:
        """Map a pydantic error location onto a line.

        A ``loc`` may contain parts that are not in the data (union branch names such as
        ``list[str]``, a missing key). We walk the parts that exist and return the deepest line.
        """
        path: list[str | int] = []
        best = self.lines.get((), 1)
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path.append(part)
                best = self.lines[tuple(path)]
        return best


# libyaml's C parser when PyYAML was built with it (10x faster on a 10,000-entry allowlist); the
# constructors below are Python either way, so behaviour is identical.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with stricter scalars and duplicate-key detection (see module docstring)."""


def _construct_bool(loader: _StrictLoader, node: yaml.ScalarNode) -> bool | str:
    text = str(node.value)
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text  # yes/no/on/off: a string; a bool field then rejects it with a clear message


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int | str:
    text = str(node.value)
    if _INT_RE.match(text):
        return int(text.replace("_", ""))
    return text  # 0x..., 0o..., 1:30 (sexagesimal): keep the text, never reinterpret it


def _construct_float(loader: _StrictLoader, node: yaml.ScalarNode) -> Decimal | str:
    text = str(node.value)
    if _DEC_RE.match(text):
        return Decimal(text.replace("_", ""))
    return text  # .inf / .nan: kept as text so numeric fields reject them


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise YamlSourceError("mapping keys must be plain scalars", key_node.start_mark.line + 1)
        if key in result:
            raise YamlSourceError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: str | int = str(key_node.value)
                sub = (*path, key)
                lines.setdefault(sub, key_node.start_mark.line + 1)
                _walk(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = (*path, index)
            lines.setdefault(sub, item.start_mark.line + 1)
            _walk(item, sub, lines)


def parse(name: str, text: str) -> Source:
    """Parse one YAML document through the hardened reader (:func:`primeguard.safeyaml.load_checked`:
    size cap, no anchors/aliases, bounded nesting). Raises :class:`YamlSourceError` with a 1-based line."""
    lines: dict[Path_, int] = {}

    def track(node: yaml.Node) -> None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)

    data = load_checked(text, _StrictLoader, on_node=track)
    if not lines:
        raise YamlSourceError("the file is empty", 1)
    return Source(name=name, text=text, data=data, lines=lines)
