"""Loading: hashes, canonical content, compiled indexes, risk parameters, error collection."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from primeguard.domain.errors import PolicyError, PolicyLoadError
from primeguard.domain.model import VenueKind
from primeguard.policy import PolicyLoadErrors, canonical_content, check_bundle, content_hash, load, load_bundle
from primeguard.policy.loader import files_from_canonical
from primeguard.policy.yamlsrc import YamlSourceError, parse
from tests.unit.policy.helpers import ALPHA_COLD, GAMMA_OKX, POLICIES, example_files, small_docs, to_files


def test_hash_is_stable_and_content_addressed() -> None:
    files = example_files()
    a, b = load_bundle(files), load(POLICIES)
    assert a.hash == b.hash == content_hash(files)
    assert a.hash == hashlib.sha256(canonical_content(files).encode()).hexdigest()  # = the store's sha256(content)
    crlf = {k: v.replace("\n", "\r\n") for k, v in files.items()}
    assert load_bundle(crlf).hash == a.hash  # line endings do not change the version
    changed = dict(files)
    changed["approvals.yaml"] = changed["approvals.yaml"].replace("above_usd: 100000", "above_usd: 100001")
    assert load_bundle(changed).hash != a.hash


def test_canonical_content_round_trips() -> None:
    files = example_files()
    assert files_from_canonical(canonical_content(files)) == files


def test_allowlist_is_indexed_per_asset_and_checksummed() -> None:
    policy = load(POLICIES)
    assert ("alpha", VenueKind.BINANCE, "ethereum", "USDC", ALPHA_COLD) in policy.allowlist
    assert ("alpha", VenueKind.BINANCE, "ethereum", "USDT", ALPHA_COLD) in policy.allowlist
    assert policy.origin("alpha-cold-usdc") is not None
    assert str(policy.origin("alpha-cold-usdc")).startswith(f"{POLICIES}/allowlist.yaml:")


def test_risk_parameters_per_tier() -> None:
    policy = load(POLICIES)
    p = policy.risk_parameters("standard")
    assert (p.ladder.warn, p.ladder.margin_call, p.ladder.halt, p.ladder.liquidate) == (
        Decimal("0.75"), Decimal("0.80"), Decimal("0.85"), Decimal("0.90"))
    assert p.max_leverage == 3 and p.max_drawdown == Decimal("0.15")
    assert p.haircut("USDC") == 0 and p.haircut("UNLISTED") == Decimal("0.5")
    assert p.price_max_age_s == 3600 and p.oracle_max_deviation == Decimal("0.02")
    assert policy.risk_parameters("standard") is p  # cached
    assert policy.risk_parameters_for_client("alpha").ladder.warn == Decimal("0.925")
    assert policy.tier_of("nobody") == "new"
    with pytest.raises(PolicyError, match="unknown tier 'gold'"):
        policy.risk_parameters("gold")


def test_every_problem_is_collected() -> None:
    docs = small_docs()
    docs["appr.yaml"]["rules"][0]["required"] = 0
    docs["appr.yaml"]["rules"][1]["roles"] = ["intern"]
    docs["hair.yaml"]["bogus"] = 1
    _, errors = check_bundle(to_files(docs))
    assert len(errors) == 3
    with pytest.raises(PolicyLoadErrors) as info:
        load_bundle(to_files(docs))
    assert "(and 2 more problems)" in str(info.value)
    assert len(info.value.errors) == 3


def test_missing_risk_file_and_reference_errors() -> None:
    docs = small_docs()
    del docs["risk.yaml"]
    with pytest.raises(PolicyLoadError, match="exactly one risk_limits file"):
        load_bundle(to_files(docs))
    docs = small_docs()
    docs["limits.yaml"]["approvals"] = "apprs"
    with pytest.raises(PolicyLoadError, match=r"unknown approvals reference 'apprs'.*did you mean 'appr'"):
        load_bundle(to_files(docs))


def test_yaml_reader_is_strict() -> None:
    src = parse("x.yaml", "a: 0x10\nb: 1.10\nc: yes\nd: 1_000\ne: true\n")
    assert src.data == {"a": "0x10", "b": Decimal("1.10"), "c": "yes", "d": 1000, "e": True}
    assert src.line_of(("c",)) == 3
    with pytest.raises(YamlSourceError, match="one YAML document"):
        parse("x.yaml", "a: 1\n---\nb: 2\n")
    with pytest.raises(YamlSourceError, match="duplicate key 'a'") as info:
        parse("x.yaml", "a: 1\nb: 2\na: 3\n")
    assert info.value.line == 3


def test_unused_allowlist_entries_are_not_indexed() -> None:
    docs = small_docs()
    docs["limits.yaml"]["allowlists"] = []
    with pytest.raises(PolicyLoadError, match="at least 1 item"):
        load_bundle(to_files(docs))
    docs = small_docs()
    docs["extra.yaml"] = {"version": 1, "kind": "withdrawal_allowlist", "id": "allow2", "entries": [
        {**docs["allow.yaml"]["entries"][0], "id": "e-extra", "asset": "ETH", "address": GAMMA_OKX}]}
    del docs["extra.yaml"]["entries"][0]["assets"]
    policy = load_bundle(to_files(docs))
    assert "e-extra" in policy.rules and all(e.id != "e-extra" for e in policy.entries)
