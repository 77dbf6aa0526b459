"""JSON text the store writes: pre-rendered parts (RawJSON) and the codec's fast walk leave every
byte as ``json.dumps`` of the normalised value wrote it, and keep the codec's refusals and masking."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from primeguard.domain.errors import StoreError
from primeguard.domain.rawjson import RawJSON, json_list, json_str
from primeguard.store import Store, open_store, repos
from primeguard.store.codec import MASK, decimal_json, dumps_json, jsonable, store_json
from tests.store.util import T0


class Colour(StrEnum):
    RED = "red"


def test_dumps_json_is_json_dumps_without_raw_parts() -> None:
    doc = {"a": [1, True, None, "x\u00e9\n\"", {"b": []}], "c": {}, "ü": "\x00"}
    assert dumps_json(doc) == json.dumps(doc)
    with pytest.raises(TypeError):
        dumps_json({"d": Decimal("1")})  # as json.dumps: only the codec's output goes in


def test_raw_parts_are_written_as_their_text() -> None:
    inner = {"k": ["v", 1, None], "n": "é"}
    raw = RawJSON.dump(inner)
    assert raw is not None
    doc = {"x": raw, "y": [raw, "z"], "w": json_list([json_str("a\"b"), raw.text])}
    expanded = {"x": inner, "y": [inner, "z"], "w": ["a\"b", inner]}
    assert dumps_json(doc) == json.dumps(expanded)
    # A string that is the placeholder itself: the text is still right (no shortcut taken).
    doc["hole"] = "\x00"
    expanded["hole"] = "\x00"
    assert dumps_json(doc) == json.dumps(expanded)
    with pytest.raises(TypeError):
        json.dumps(doc)  # nothing else serialises a RawJSON by mistake


@pytest.mark.parametrize("bad", [1.5, float("nan"), Decimal("1"), Colour.RED, ("a",), {1: "a"}, {"a": [0.1]}])
def test_raw_json_is_made_only_from_plain_types(bad: Any) -> None:
    assert RawJSON.dump({"v": bad}) is None
    with pytest.raises(TypeError):
        json_str(Colour.RED)


def test_the_fast_walk_normalises_and_refuses_as_before() -> None:
    assert jsonable({"a": ("x", 1), "b": Colour.RED, "c": [Colour.RED], "d": {"e": Decimal("1E-3")}}) == {
        "a": ["x", 1], "b": "red", "c": ["red"], "d": {"e": "0.001"}}
    for bad in ({"a": 1.0}, {"a": {"b": float("inf")}}, {"a": [Decimal("NaN")]}, {"a": Decimal("Infinity")}):
        with pytest.raises(StoreError):
            jsonable(bad)
    leaf = {"a": "b"}
    out = jsonable({"x": leaf})
    assert out == {"x": leaf} and out["x"] is not leaf  # copied, never shared with the caller
    assert decimal_json(Decimal("1.50")) == "1.50" and decimal_json(None) is None
    with pytest.raises(StoreError):
        decimal_json(Decimal("NaN"))


def test_masking_sees_through_the_fast_walk_the_memo_and_raw_parts() -> None:
    shared = {"api": {"api_secret": "s3cr3t", "key": "k"}, "list": [1]}
    memo: dict[int, Any] = {}
    for _ in range(2):  # the second time from the memo: still masked
        body, masked = store_json({"venue": shared}, memo=memo)
        assert body["venue"]["api"]["api_secret"] == MASK and masked == ["$.venue.api.api_secret"]
    body, masked = store_json({"plain": {"password": "pw", "user": "u"}})
    assert body == {"plain": {"password": MASK, "user": "u"}} and masked == ["$.plain.password"]
    body, masked = store_json({"arrived": {"note": MASK}})
    assert masked == ["$.arrived.note"]
    raw = RawJSON.dump({"token": "abc"})
    body, masked = store_json({"r": raw})  # a rendered part is read back before masking
    assert body == {"r": {"token": MASK}} and masked == ["$.r.token"]
    assert "abc" not in json.dumps(body)


def _world(tmp: Path) -> tuple[Any, Any]:
    from primeguard.pipeline.evaluate import evaluate
    from tests.bench.sweep_world import build

    w = build(3, tmp)
    return w, evaluate(w.cfg, w.obs, policy=None, ladder={}, peaks={})


def test_a_valuation_rendered_for_the_store_is_the_same_text(tmp_path: Path) -> None:
    _w, ev = _world(tmp_path)
    for v in ev.valuations.values():
        assert v.positions
        assert dumps_json(jsonable(v.to_store_json())) == json.dumps(jsonable(v.to_json_dict()))
    # A position with a non-str identifier: the dict path (still the same text).
    v = next(iter(ev.valuations.values()))
    odd = replace(v.positions[0], venue=Colour.RED, liquidation_price=None, liquidation_distance=None)
    assert odd.json_text() is None
    v.__dict__["positions"] = (odd, *v.positions[1:])
    assert dumps_json(jsonable(v.to_store_json())) == json.dumps(jsonable(v.to_json_dict()))


def _old_snapshot_payload(snap: Any) -> dict[str, Any]:
    """The payload as the sweep built it before (Decimals left to the codec)."""
    return {
        "balances": [{"asset": b.asset, "quantity": b.quantity, "source": b.source} for b in snap.balances],
        "positions": [{"instrument": p.instrument, "underlying": p.underlying, "size": p.size,
                       "entry_price": p.entry_price, "mark_price": p.mark_price,
                       "liquidation_price": p.liquidation_price} for p in snap.positions],
        "credentials": [{"id": c.id, "kind": c.kind, "holder": c.holder.value,
                         "capabilities": sorted(x.value for x in c.capabilities), "ip_restricted": c.ip_restricted}
                        for c in snap.credentials],
        "venue": snap.account.venue.value, "chain": snap.account.chain, "client": snap.account.client_id,
    }


def test_a_sweeps_rows_hold_the_text_of_the_plain_path(tmp_path: Path) -> None:
    """Every snapshot payload and metric extra a sweep writes is, byte for byte, ``json.dumps`` of
    what the codec makes of the plain (dict, Decimal) documents."""
    from primeguard.pipeline.outcome import persist_sweep

    w, ev = _world(tmp_path)
    db = tmp_path / "rows.db"
    store = open_store(f"sqlite:///{db}", migrate=True)
    try:
        persist_sweep(store, sweep_id="s1", obs=w.obs, ev=ev, findings=list(ev.findings), clients=None, peaks={})
    finally:
        store.close()
    con = sqlite3.connect(db)
    payloads = dict(con.execute("select account_id, payload from snapshots where sweep_id = 's1'").fetchall())
    extras = dict(con.execute("select client_id, extra from metric_history where sweep_id = 's1'").fetchall())
    con.close()
    assert len(payloads) == len(w.obs.snapshots) and len(extras) == len(ev.valuations)
    for snap in w.obs.snapshots:
        assert payloads[snap.account.id] == json.dumps(store_json(_old_snapshot_payload(snap))[0])
    for cid, v in ev.valuations.items():
        text = extras[cid]
        doc = json.loads(text)
        doc["valuation"] = v.to_json_dict()
        assert text == json.dumps(jsonable(doc))


def test_raw_parts_round_trip_on_every_backend(store: Store) -> None:
    inner = {"positions": [{"size": "1.5", "venue": "okx"}], "n": None}
    with store.session() as s:
        repos.record_metric(s, client_id="c1", at=T0, equity=1, loan=0, ltv=None, ladder_state="normal",
                            extra={"raw": RawJSON.dump(inner), "plain": "x"})
    with store.session(readonly=True) as s:
        row = repos.latest_metric(s, "c1")
        assert row is not None and row.extra == {"raw": inner, "plain": "x"}

