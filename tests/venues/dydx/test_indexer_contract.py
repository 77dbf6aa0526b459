"""Contract tests: the indexer simulator's answers held against the real indexer's swagger and the
status codes of its comlink controllers.

``recorded/indexer_swagger_trimmed.json`` is the part of v4-chain's
``indexer/services/comlink/public/swagger.json`` these routes use (commit named inside). Status
codes, default filters, sort order and pagination come from the controllers under
``indexer/services/comlink/src/controllers/api/v4/`` (cited per test). Real HTTP over loopback.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from primeguard.sandbox.dydx.indexer import GEOBLOCK_BODY
from primeguard.sandbox.dydx.state import derive_address

SWAGGER = json.loads((Path(__file__).parent / "recorded" / "indexer_swagger_trimmed.json").read_text())
SCHEMAS: dict[str, Any] = SWAGGER["schemas"]
NOBODY = derive_address("nobody", 0)


# --- a small OpenAPI 3 schema checker (required fields, JSON types, enums, no extra fields) --------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def violations(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty: it conforms)."""
    nullable = bool(schema.get("nullable"))
    if "allOf" in schema:
        if value is None and nullable:
            return []
        return [v for part in schema["allOf"] for v in violations(value, part, where)]
    schema = _resolve(schema)
    if value is None:
        return [] if nullable or schema.get("nullable") else [f"{where}: null"]
    kind = schema.get("type")
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict)}
    if kind in checks and not checks[kind](value):
        return [f"{where}: expected {kind}, got {type(value).__name__} {str(value)[:40]!r}"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "array":
        for i, item in enumerate(value):
            out += violations(item, schema["items"], f"{where}[{i}]")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: missing required {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                out += violations(item, props[name], f"{where}.{name}")
            elif isinstance(extra, dict):
                out += violations(item, extra, f"{where}.{name}")
            elif extra is False:
                out.append(f"{where}: field {name!r} is not in the schema")
    return out


def test_checker_catches_what_it_must():
    market = SCHEMAS["PerpetualMarketResponseObject"]
    ok = {k: "0" for k in market["required"]}
    for k in ("trades24H", "atomicResolution", "quantumConversionExponent", "stepBaseQuantums", "subticksPerTick"):
        ok[k] = 0
    ok.update(status="ACTIVE", marketType="CROSS")
    assert violations(ok, market) == []
    assert violations({k: v for k, v in ok.items() if k != "baseOpenInterest"}, market)
    assert violations({**ok, "trades24H": "0"}, market)
    assert violations({**ok, "status": "OPEN"}, market)
    assert violations({**ok, "surprise": 1}, market)


# --- helpers ------------------------------------------------------------------------------------


def get(sims: Any, path: str, **params: Any) -> httpx.Response:
    return httpx.get(sims.urls["indexer"] + "/v4" + path, params=params, timeout=5)


def conforms(resp: httpx.Response, schema_name: str) -> Any:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    problems = violations(body, {"$ref": f"#/components/schemas/{schema_name}"})
    assert problems == [], problems
    return body


@pytest.fixture
def busy(sims: Any) -> Any:
    """alpha with a closed position, a later-opened position and three transfers."""
    sims.set_position("alpha", 0, "ETH-USD", Decimal("1"), Decimal("2900"))
    sims.set_position("alpha", 0, "ETH-USD", Decimal(0))
    sims.set_position("alpha", 0, "LINK-USD", Decimal("-10"), Decimal("15"))
    for amount in ("1", "2", "3"):
        sims.record_transfer("alpha", 0, amount=Decimal(amount), recipient=NOBODY)
    return sims


# --- 200 bodies against the swagger ---------------------------------------------------------------


def test_every_route_conforms_to_the_swagger(busy):
    sims = busy
    addr = sims.address_of("alpha")
    conforms(get(sims, f"/addresses/{addr}"), "AddressResponse")
    # The router wraps the controller's SubaccountResponseObject as {"subaccount": ...}.
    sub = get(sims, f"/addresses/{addr}/subaccountNumber/0").json()
    assert set(sub) == {"subaccount"}
    assert violations(sub["subaccount"], {"$ref": "#/components/schemas/SubaccountResponseObject"}) == []
    conforms(get(sims, "/perpetualPositions", address=addr, subaccountNumber=0), "PerpetualPositionResponse")
    conforms(get(sims, "/assetPositions", address=addr, subaccountNumber=1), "AssetPositionResponse")
    conforms(get(sims, "/transfers", address=addr, subaccountNumber=0), "TransferResponse")
    conforms(get(sims, "/transfers", address=addr, subaccountNumber=0, page=1, limit=2), "TransferResponse")
    markets = conforms(get(sims, "/perpetualMarkets"), "PerpetualMarketResponse")
    assert all("baseOpenInterest" in m for m in markets["markets"].values())
    conforms(get(sims, "/perpetualMarkets", ticker="BTC-USD"), "PerpetualMarketResponse")
    conforms(get(sims, "/height"), "HeightResponse")
    conforms(get(sims, "/time"), "TimeResponse")


# --- status codes per route (comlink controllers) ------------------------------------------------

ROUTES_WITH_ADDRESS = [
    ("/addresses/{a}", {}),
    ("/addresses/{a}/subaccountNumber/0", {}),
    ("/perpetualPositions", {"subaccountNumber": 0}),
    ("/assetPositions", {"subaccountNumber": 0}),
    ("/transfers", {"subaccountNumber": 0}),
]


def _call(sims: Any, route: str, params: dict[str, Any], address: str) -> httpx.Response:
    if "{a}" in route:
        return get(sims, route.replace("{a}", address), **params)
    return get(sims, route, address=address, **params)


@pytest.mark.parametrize(("route", "params"), ROUTES_WITH_ADDRESS, ids=[r[0] for r in ROUTES_WITH_ADDRESS])
def test_invalid_address_is_400_before_anything_else(sims, route, params):
    # CheckAddressSchema / CheckSubaccountSchema: isValidAddress (alphanumeric, at most 90 chars).
    sims.set_geo_blocked(True)  # validation runs before complianceAndGeoCheck
    for bad in ("dydx1-not_valid", "x" * 91):
        resp = _call(sims, route, params, bad)
        assert resp.status_code == 400, (route, bad, resp.text)
        [err] = resp.json()["errors"]
        assert err["path"] == "address" and "valid" in err["msg"]


@pytest.mark.parametrize(("route", "expected"), [
    ("/addresses/{a}", 404),  # getAddress: NotFoundError when no subaccounts
    ("/addresses/{a}/subaccountNumber/0", 404),  # getSubaccount: NotFoundError
    ("/perpetualPositions", 200),  # no OPEN positions found → no subaccount lookup → empty list
    ("/assetPositions", 404),  # NotFoundError when the subaccount is missing
    ("/transfers", 404),  # NotFoundError when the subaccount is missing
])
def test_unknown_address_status_per_route(sims, route, expected):
    params = {} if "{a}" in route else {"subaccountNumber": 0}
    resp = _call(sims, route, params, NOBODY)
    assert resp.status_code == expected, resp.text
    if expected == 200:
        assert resp.json() == {"positions": []}
    # An address that exists with an unknown subaccount number behaves the same.
    if route != "/addresses/{a}":
        other = _call(sims, route.replace("/0", "/7"), {**params, "subaccountNumber": 7} if params else {},
                      sims.address_of("beta"))
        assert other.status_code == expected, other.text


def test_bad_subaccount_number_is_400(sims):
    addr = sims.address_of("alpha")
    assert get(sims, f"/addresses/{addr}/subaccountNumber/128001").status_code == 400
    assert get(sims, "/transfers", address=addr, subaccountNumber=-1).status_code == 400
    assert get(sims, "/perpetualPositions", address=addr).status_code == 400


@pytest.mark.parametrize(("route", "params"), ROUTES_WITH_ADDRESS, ids=[r[0] for r in ROUTES_WITH_ADDRESS])
def test_geo_block_is_403_on_address_routes(sims, route, params):
    sims.set_geo_blocked(True)
    resp = _call(sims, route, params, sims.address_of("alpha"))
    assert resp.status_code == 403 and resp.json() == GEOBLOCK_BODY


@pytest.mark.parametrize("route", ["/perpetualMarkets", "/height", "/time"])
def test_geo_block_spares_routes_without_an_address(sims, route):
    sims.set_geo_blocked(True)
    assert get(sims, route).status_code == 200


def test_unknown_ticker_is_404(sims):
    assert get(sims, "/perpetualMarkets", ticker="NOPE-USD").status_code == 404


# --- defaults: filters, order, pagination ----------------------------------------------------------


def test_perpetual_positions_default_is_every_status_newest_opened_first(busy):
    addr = busy.address_of("alpha")
    rows = get(busy, "/perpetualPositions", address=addr, subaccountNumber=0).json()["positions"]
    # PerpetualPositionTable.findAll orders by subaccountId ASC, openEventId DESC; no status filter.
    assert [(r["market"], r["status"]) for r in rows] == [("LINK-USD", "OPEN"), ("ETH-USD", "CLOSED"),
                                                         ("BTC-USD", "OPEN")]
    closed = rows[1]
    assert closed["closedAt"] is not None and closed["exitPrice"] is not None and closed["size"] == "0"
    only_open = get(busy, "/perpetualPositions", address=addr, subaccountNumber=0, status="OPEN").json()
    assert [r["market"] for r in only_open["positions"]] == ["LINK-USD", "BTC-USD"]
    assert get(busy, "/perpetualPositions", address=addr, subaccountNumber=0, status="SIDEWAYS").status_code == 400


def test_transfers_newest_first_and_paginated_when_asked(busy):
    addr = busy.address_of("alpha")
    plain = get(busy, "/transfers", address=addr, subaccountNumber=0).json()
    assert [t["size"] for t in plain["transfers"]] == ["3", "2", "1"]  # createdAtHeight DESC
    assert set(plain) == {"transfers"}  # no page: no pagination fields
    page2 = get(busy, "/transfers", address=addr, subaccountNumber=0, page=2, limit=2).json()
    assert page2 == {**page2, "pageSize": 2, "totalResults": 3, "offset": 2}
    assert [t["size"] for t in page2["transfers"]] == ["1"]
    assert get(busy, "/transfers", address=addr, subaccountNumber=0, page=0).status_code == 400
