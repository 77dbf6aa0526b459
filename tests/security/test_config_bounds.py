"""Every number in the agent config is finite and bounded, and no holding is listed twice.

The duration fields (``*_s``) are discovered by walking the schema, so a field added later is
tested without editing this file; a new model must appear in ``BASE`` (a test says so).
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from primeguard.config import load_config
from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.errors import ConfigError
from tests.security.test_scenario_ranges import line_of_path


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """YAML without anchors/aliases (shared dicts in BASE are written out each time)."""
    return yaml.dump(data, Dumper=_NoAliases, sort_keys=False)


ADDR = ["0x" + f"{n:040x}" for n in range(0x1001, 0x1010)]  # all-lowercase hex: no checksum needed
DYDX = "dydx1" + "q" * 38
SECRET = {"value": "x"}

BASE: dict[str, Any] = {
    "version": 1,
    "chains": [{"id": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:9", "timeout_s": 5,
                "max_block_age_s": 120}],
    "tokens": [{"symbol": "USDC", "chain": "ethereum", "address": ADDR[0], "decimals": 6, "asset": "USDC"}],
    "feeds": [{"asset": "ETH", "chain": "ethereum", "address": ADDR[1], "decimals": 8, "heartbeat_s": 3600}],
    "clients": [{"id": "alpha", "loan": {"principal": "1000", "annual_rate": "0.05", "start": "2026-01-01T00:00:00Z",
                                     "draws": [{"at": "2026-02-01T00:00:00Z", "amount": "10"}],
                                     "repayments": [{"at": "2026-03-01T00:00:00Z", "amount": "5"}]}},
                {"id": "beta", "loan": {"principal": "1000", "start": "2026-01-01T00:00:00Z", "interest": {
                    "kind": "utilization", "base_rate": "0.02", "slope_below": "0.1", "slope_above": "1",
                    "optimal_utilization": "0.8", "pool_utilization": [{"at": "2026-01-01T00:00:00Z",
                                                                         "utilization": "0.5"}]}}},
                {"id": "gamma", "loan": {"principal": "1000", "start": "2026-01-01T00:00:00Z",
                                         "interest": {"kind": "fixed", "rate": "0.05"}}}],
    "wallets": [{"id": "alpha-w1", "client": "alpha", "chain": "ethereum", "address": ADDR[2]},
                {"id": "alpha-w2", "client": "alpha", "chain": "ethereum", "address": ADDR[3]}],
    "cex_accounts": [
        {"id": "alpha-bin", "client": "alpha", "venue": "binance", "sub_account": "alpha@example.com",
         "monitor": "mon", "max_age_s": 120,
         "credentials": [{"id": "mon", "holder": "monitor", "api_key": SECRET, "secret": SECRET}]},
        {"id": "alpha-okx", "client": "alpha", "venue": "okx", "sub_account": "alpha1", "monitor": "mon",
         "credentials": [{"id": "mon", "holder": "monitor", "api_key": SECRET, "secret": SECRET}]},
    ],
    "dydx_accounts": [{"id": "alpha-dydx", "client": "alpha", "address": DYDX, "subaccounts": [0, 1],
                       "indexer_url": "http://127.0.0.1:9", "max_age_s": 120, "timeout_s": 5}],
    "known_spenders": [{"address": ADDR[4], "label": "router"}],
    "vaults": [{"id": "alpha-vault", "client": "alpha", "chain": "ethereum", "address": ADDR[5]}],
    "custody": {"treasury_keystore": "t.json", "receipt_timeout_s": 60},
    "screening": {"oracles": [], "ttl_s": 300},
    "alerts": {"dispatch_timeout_s": 30, "channels": [
        {"name": "log", "kind": "log", "cooldown_s": 900, "repeat_s": 3600, "retry_s": 60},
        {"name": "hook", "kind": "webhook", "url": SECRET, "timeout_s": 5, "backoff_s": 0.5, "max_backoff_s": 5},
        {"name": "mail", "kind": "email", "host": "smtp.example.com", "from": "a@example.com",
         "to": ["b@example.com"], "timeout_s": 10, "backoff_s": 1, "max_backoff_s": 5},
    ]},
    "playbooks": {"modes": {}},
    "audit": {"anchors": {"every_s": 300, "sinks": [{"kind": "file", "path": "anchors.jsonl"},
                                                  {"kind": "webhook", "url": SECRET, "timeout_s": 5}]}},
    "scan": {"from_block": 0, "log_chunk_blocks": 10000, "reorg_depth": 64},
}


# --- schema introspection -----------------------------------------------------------------------


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """Pydantic models inside an annotation (Optional, tuple[X, ...], unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _all_models(root: type[BaseModel] = PrimeguardConfig) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
            for meta in info.metadata:  # Annotated[Any, PlainValidator(...)] secret refs
                todo.extend(_models_in(getattr(meta, "json_schema_input_type", None)))
    return seen


DURATIONS = sorted({(m.__name__, name) for m in _all_models() for name in m.model_fields if name.endswith("_s")})
MODELS = {m.__name__: m for m in _all_models()}


def _instances(model: type[BaseModel], data: Any, path: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(model name, path) of every mapping in ``data`` that validates as a model, following the schema."""
    if not isinstance(data, dict):
        return
    yield model.__name__, path
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        candidates = list(_models_in(info.annotation))
        values = data[key]
        items = list(enumerate(values)) if isinstance(values, list) else [(None, values)]
        for index, item in items:
            sub = (*path, key) if index is None else (*path, key, index)
            if not isinstance(item, dict):
                continue
            kind = item.get("kind")
            chosen = [c for c in candidates if kind is None or "kind" not in c.model_fields
                      or kind in typing.get_args(c.model_fields["kind"].annotation)
                      or c.model_fields["kind"].default == kind]
            for c in chosen[:1]:
                yield from _instances(c, item, sub)


def _first_instance(model_name: str) -> tuple[Any, ...] | None:
    return next((p for n, p in _instances(PrimeguardConfig, BASE, ()) if n == model_name), None)


def test_base_config_is_valid_and_covers_every_model_with_a_duration(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(BASE))
    load_config(path)
    assert len(DURATIONS) >= 15  # the walk found them (chains, dYdX, custody, alerts...)
    missing = sorted({m for m, _ in DURATIONS if _first_instance(m) is None})
    assert not missing, f"add an instance of {missing} to BASE so its duration fields are tested"


# --- every duration: finite, positive, bounded ------------------------------------------------------

BAD_VALUES = {"inf": float("inf"), "nan": float("nan"), "minus_inf": float("-inf"), "negative": -1,
              "huge": 10**12}


def _put(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@pytest.mark.parametrize("bad", list(BAD_VALUES))
@pytest.mark.parametrize(("model", "field"), DURATIONS, ids=[f"{m}.{f}" for m, f in DURATIONS])
def test_every_duration_rejects_unbounded_values(tmp_path: Path, model: str, field: str, bad: str) -> None:
    where = _first_instance(model)
    assert where is not None, f"BASE has no {model}"
    data = copy.deepcopy(BASE)
    _put(data, (*where, field), BAD_VALUES[bad])
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(data))
    dotted = ".".join(str(p) for p in (*where, field))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = line_of_path(path.read_text(), dotted)
    msg = str(info.value)
    # The error names the file, the line of the key and the field (a union branch may add a suffix).
    assert re.match(rf"{re.escape(str(path))}:line {line}: {re.escape('.'.join(map(str, where)))}\.", msg), msg
    assert field in msg


# --- every number bounded -------------------------------------------------------------------------

NUMERIC = (int, float, Decimal)


def _numeric_leaves(annotation: Any, metadata: list[Any]) -> Iterator[list[Any]]:
    """The metadata list of every numeric type inside ``annotation`` (with its own Annotated metadata)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        flat = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        yield from _numeric_leaves(base, [*metadata, *flat])
    elif annotation in NUMERIC:
        yield metadata
    elif origin in (typing.Union, types.UnionType):  # X | None: the field's bounds apply to X
        for arg in typing.get_args(annotation):
            yield from _numeric_leaves(arg, metadata)
    elif origin in (tuple, list, dict):
        for arg in typing.get_args(annotation):
            if arg is not Ellipsis:
                yield from _numeric_leaves(arg, [])
    elif isinstance(annotation, type) and issubclass(annotation, bool):
        return


NUMBERS = sorted(
    (m.__name__, name)
    for m in _all_models()
    for name, info in m.model_fields.items()
    if list(_numeric_leaves(info.annotation, list(info.metadata)))
)


@pytest.mark.parametrize(("model", "field"), NUMBERS, ids=[f"{m}.{f}" for m, f in NUMBERS])
def test_every_number_has_an_upper_bound(model: str, field: str) -> None:
    info = MODELS[model].model_fields[field]
    for metadata in _numeric_leaves(info.annotation, list(info.metadata)):
        assert any(isinstance(m, (annotated_types.Le, annotated_types.Lt)) for m in metadata), (
            f"{model}.{field} has no upper bound")


# --- nothing counted twice --------------------------------------------------------------------------


def _load_with(tmp_path: Path, mutate: Any) -> tuple[Path, str]:
    data = copy.deepcopy(BASE)
    mutate(data)
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, str(info.value)


DUPLICATES = {
    "wallet_twice": (lambda d: d["wallets"].append(
        {"id": "alpha-w3", "client": "alpha", "chain": "ethereum", "address": ADDR[2]}), "wallets.2.address"),
    "wallet_checksummed_twice": (lambda d: d["wallets"].append(
        {"id": "alpha-w3", "client": "alpha", "chain": "ethereum",
         "address": "0x0000000000000000000000000000000000001003".upper().replace("0X", "0x")}),
        "wallets.2.address"),
    "wallet_at_vault": (lambda d: d["wallets"].append(
        {"id": "alpha-w3", "client": "alpha", "chain": "ethereum", "address": ADDR[5]}), "vaults.0.address"),
    "vault_twice": (lambda d: d["vaults"].append(
        {"id": "alpha-vault2", "client": "alpha", "chain": "ethereum", "address": ADDR[5]}), "vaults.1.address"),
    "cex_sub_account_twice": (lambda d: d["cex_accounts"].append(
        {**copy.deepcopy(d["cex_accounts"][0]), "id": "alpha-bin2"}), "cex_accounts.2.sub_account"),
    "dydx_subaccount_twice": (lambda d: d["dydx_accounts"].append(
        {**copy.deepcopy(d["dydx_accounts"][0]), "id": "alpha-dydx2", "subaccounts": [1]}),
        "dydx_accounts.1.subaccounts.0"),
    "dydx_subaccount_repeated": (lambda d: d["dydx_accounts"][0].update(subaccounts=[0, 1, 0]),
                                 "dydx_accounts.0.subaccounts.2"),
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_same_holding_twice_is_refused_at_its_line(tmp_path: Path, case: str) -> None:
    mutate, dotted = DUPLICATES[case]
    path, msg = _load_with(tmp_path, mutate)
    line = line_of_path(path.read_text(), dotted)
    assert msg.startswith(f"{path}:line {line}: {dotted}: "), msg
    assert "counted twice" in msg


def test_same_address_on_another_chain_is_fine(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["chains"].append({"id": "arbitrum", "chain_id": 42161, "rpc_url": "http://127.0.0.1:9"})
    data["wallets"].append({"id": "alpha-arb", "client": "alpha", "chain": "arbitrum", "address": ADDR[2]})
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(data))
    cfg = load_config(path)
    assert [w.id for w in cfg.wallets].count("alpha-arb") == 1


def test_a_vault_counts_once_as_a_contract_wallet(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(BASE))
    cfg = load_config(path)
    at_vault = [w for w in cfg.wallets if w.address.lower() == ADDR[5]]
    assert [(w.id, w.kind, w.client) for w in at_vault] == [("alpha-vault", "contract", "alpha")]
