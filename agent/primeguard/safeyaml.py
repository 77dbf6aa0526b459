"""The one hardened way primeguard reads a YAML file: config, scenario, policy and policy test files.

YAML can describe a document far bigger than its text (anchors and aliases: the "billion laughs"
expansion), nest deep enough to exhaust the stack, or simply be huge. Before any node tree is
built we therefore:

- refuse text larger than :data:`MAX_YAML_BYTES` (8 MiB), and read files only up to that size;
- scan the parser's event stream once (linear in the text, nothing expanded) and refuse every
  alias (``*name``) and anchor (``&name``), naming it and its line. Our files never need them; a
  merge key (``<<: *base``) is refused too: write the values out;
- refuse nesting deeper than :data:`MAX_DEPTH` mappings/sequences;
- accept exactly one document.

Only then does the caller's ``SafeLoader`` subclass compose and construct the data (each loader
keeps its own scalar rules and line tracking). Every problem is a
:class:`~primeguard.domain.errors.YamlSourceError` with a 1-based line where there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from primeguard.domain.errors import YamlSourceError

MAX_YAML_BYTES = 8 * 1024 * 1024
"""Largest YAML file (or text) accepted, in bytes."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted."""

# libyaml's C parser when PyYAML was built with it; the event scan is then ~10x faster.
_Scanner: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_text(path: str | Path) -> str:
    """Read a YAML file as UTF-8 text. Refuses what is not a regular file, a file larger than
    :data:`MAX_YAML_BYTES` (never reading more than that) and text that is not UTF-8."""
    p = Path(path)
    try:
        if not p.is_file():
            raise YamlSourceError("not a regular file" if p.exists() else "no such file", None)
        with p.open("rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise YamlSourceError(f"cannot read file: {exc.strerror or exc}", None) from None
    if len(raw) > MAX_YAML_BYTES:
        raise YamlSourceError(f"file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB: refused", None)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlSourceError("file is not UTF-8 text", line) from None


def check_yaml_text(text: str) -> None:
    """Refuse ``text`` when it is too large, uses an alias or anchor, nests deeper than
    :data:`MAX_DEPTH` or is not valid YAML — by scanning parser events, never building nodes."""
    if len(text) > MAX_YAML_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise YamlSourceError(f"YAML text is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB: refused", None)
    depth = 0
    first_anchor: tuple[str, int | None] | None = None
    try:
        for event in yaml.parse(text, Loader=_Scanner):
            if isinstance(event, yaml.AliasEvent):
                raise YamlSourceError(
                    f"YAML alias '*{event.anchor}' is not allowed (anchors and aliases are refused: "
                    "write the value out)", _line(event))
            if isinstance(event, yaml.NodeEvent) and event.anchor is not None and first_anchor is None:
                first_anchor = (str(event.anchor), _line(event))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlSourceError(f"YAML nested deeper than {MAX_DEPTH} levels: refused",
                                          _line(event))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"YAML error: {exc}", None) from None
    if first_anchor is not None:
        name, line = first_anchor
        raise YamlSourceError(f"YAML anchor '&{name}' is not allowed (anchors and aliases are refused)", line)


def load_checked(
    text: str, loader_cls: type[yaml.SafeLoader], *, on_node: Callable[[yaml.Node], None] | None = None
) -> Any:
    """Check ``text`` with :func:`check_yaml_text`, then compose its single document with
    ``loader_cls`` (a ``SafeLoader`` subclass), call ``on_node`` with the root node (line tracking)
    and construct the data. An empty document gives ``None``. YAML errors become
    :class:`YamlSourceError`; errors raised by the loader's own constructors propagate unchanged."""
    check_yaml_text(text)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if on_node is not None:
            on_node(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"YAML error: {exc}", None) from None
    finally:
        loader.dispose()


class _NoAliasDumper(yaml.SafeDumper):
    """SafeDumper that writes a value shared by two places twice instead of as an anchor + alias
    (which :func:`check_yaml_text` would refuse on reading back)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """YAML text for ``data`` that the hardened reader accepts: safe types only, no anchors/aliases."""
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)


def _line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return None if mark is None else mark.line + 1


def _syntax_error(exc: yaml.MarkedYAMLError) -> YamlSourceError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or str(exc)
    if "expected a single document" in str(exc):
        problem = "one YAML document per file (found a second '---' document)"
    return YamlSourceError(f"YAML syntax error: {problem}", mark.line + 1 if mark else None)
