"""Validate ``--json`` outputs against the JSON Schemas in docs/schemas (draft 2020-12)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"


@cache
def _registry() -> Any:
    docs = [json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))]
    return jsonschema_rs.Registry([(d["$id"], d) for d in docs])


def schema_file(name: str) -> Path:
    """docs/schemas/<name>.json (``name`` as in ``primeguard.<name>/1``)."""
    return SCHEMA_DIR / f"{name}.json"


def check(name: str, data: Any) -> None:
    """Assert ``data`` validates against docs/schemas/<name>.json, listing every error."""
    schema = json.loads(schema_file(name).read_text())
    validator = jsonschema_rs.validator_for(schema, registry=_registry())
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, f"{name}: " + "; ".join(errors[:20])
