"""``policy diff``: changes in effect, in words, classified looser / stricter."""

from __future__ import annotations

from typing import Any

import pytest

from primeguard.domain.errors import PolicyError
from primeguard.policy import Change, diff, diff_text, load_bundle
from tests.unit.policy.helpers import ALPHA_COLD, small_docs, to_files

NEW_ADDR = "0x506fEDd589E0BB429f2b312Dae2eDdd0a7c2F794"


def _diff(edit: Any) -> list[Change]:
    old = load_bundle(to_files(small_docs()))
    docs = small_docs()
    edit(docs)
    return diff(old, load_bundle(to_files(docs)))


def test_identical_policies_have_no_change() -> None:
    a = load_bundle(to_files(small_docs()))
    assert diff(a, a) == []
    assert "No change in effect" in diff_text(a, a, [])


def test_new_allowlist_entry_reads_as_become_allowed() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["allow.yaml"]["entries"].append({
            "id": "e-new", "client": "gamma", "venue": "okx", "chain": "ethereum", "asset": "USDC",
            "address": NEW_ADDR, "label": "gamma hot", "added_by": "dave", "added_at": "2026-11-01T00:00:00Z",
            "expires_at": "2027-11-01T00:00:00Z"})
    (c,) = _diff(edit)
    assert c.effect == "looser" and c.area == "allowlist"
    assert c.text.startswith(f"USDC withdrawals by client gamma from okx on ethereum to {NEW_ADDR} (gamma hot) "
                             f"become allowed")


def test_removed_entry_and_expiry_moves() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["allow.yaml"]["entries"][1]["expires_at"] = "2026-12-01T00:00:00Z"
        d["allow.yaml"]["entries"][0]["assets"] = ["USDC"]  # ETH to alpha's wallet goes away
    changes = _diff(edit)
    texts = {c.text.split(" (")[0]: c.effect for c in changes}
    assert any("ETH withdrawals by client alpha" in t and "become denied" in t for t in (c.text for c in changes))
    assert all(c.effect == "stricter" for c in changes) and len(changes) == 2
    assert texts


def test_limits_guards_approvals_and_tiers() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["limits.yaml"]["limits"][0]["per_tx_usd"] = 2_000_000
        d["limits.yaml"]["limits"][2]["shadow"] = False
        d["limits.yaml"]["guards"]["ladder"]["allow_states"] = ["normal"]
        d["appr.yaml"]["rules"][0]["above_usd"] = 75_000
        d["risk.yaml"]["clients"][1]["tier"] = "pro"
        d["risk.yaml"]["tiers"][0]["ladder"]["margin_call"] = "0.75"
        d["hair.yaml"]["assets"][1]["haircut"] = "0.2"
    got = {(c.subject, c.effect): c.text for c in _diff(edit)}
    assert got[("l-all", "looser")] == ("per-transaction limit of limit l-all (all withdrawals) moves from "
                                        "$1,000,000 to $2,000,000 (looser)")
    assert "leaves shadow mode" in got[("l-burst", "stricter")]
    assert got[("g-ladder", "stricter")] == "withdrawals become denied in ladder state warn"
    assert "moves from $50,000 to $75,000" in got[("a-50k", "looser")]
    assert got[("gamma", "looser")] == "client gamma moves from tier new to pro (looser)"
    assert got[("new", "looser")] == "tier new: margin call band (LTV) moves from 0.7 to 0.75 (looser)"
    assert got[("ETH", "stricter")] == "haircut on ETH moves from 0.1 to 0.2 (stricter)"


def test_capability_changes() -> None:
    old_docs = small_docs()
    old_docs["keys.yaml"] = {"version": 1, "kind": "capability_rules", "id": "keys", "known_spenders": [], "rules": [
        {"id": "c1", "applies_to": {"holders": ["client"]}, "forbid": ["withdraw", "universal_transfer"]}]}
    new_docs = small_docs()
    new_docs["keys.yaml"] = {"version": 1, "kind": "capability_rules", "id": "keys",
                             "known_spenders": [{"address": NEW_ADDR, "label": "router"}], "rules": [
        {"id": "c1", "applies_to": {"holders": ["client"]}, "forbid": ["withdraw"]}]}
    changes = diff(load_bundle(to_files(old_docs)), load_bundle(to_files(new_docs)))
    texts = sorted(c.text for c in changes)
    assert "c1: credentials in scope may now universal_transfer" in texts
    assert any(t.startswith(f"unlimited approvals to {NEW_ADDR}") for t in texts)
    assert all(c.effect == "looser" for c in changes)
    text = diff_text(load_bundle(to_files(old_docs)), load_bundle(to_files(new_docs)), changes)
    assert "2 change(s) in effect (2 looser, 0 stricter, 0 other)" in text


def test_new_risk_fields_are_diffed() -> None:
    from tests.unit.policy.helpers import example_files

    new = example_files()
    old = dict(new)
    old["risk.yaml"] = (new["risk.yaml"].replace("max_stress_shortfall_usd: 250000", "max_stress_shortfall_usd: 500000")
                        .replace("{venue: binance, max_client_share: 0.70, max_book_share: 0.50}",
                                 "{venue: binance, max_client_share: 0.90, max_book_share: 0.50}"))
    old["withdrawals.yaml"] = new["withdrawals.yaml"].replace("  financing: {id: financing-cap-holds}\n", "")
    changes = diff(load_bundle(old), load_bundle(new))
    text = [c.text for c in changes]
    assert any("new financing guard financing-cap-holds" in t and c.effect == "stricter"
               for c, t in zip(changes, text, strict=True))
    assert "tier standard: max_stress_shortfall_usd moves from $500,000 to $250,000 (stricter)" in text
    assert "venue binance: largest share of a client's collateral moves from 0.9 to 0.7 (stricter)" in text


def test_defi_classes_and_known_delegates_are_diffed() -> None:
    """Issue M: a DeFi haircut class added is looser (its positions become collateral), removed is
    stricter, a haircut raised is stricter; a known 7702 delegate added is looser, removed stricter."""
    def keys(delegates: list[dict[str, str]]) -> dict[str, Any]:
        return {"version": 1, "kind": "capability_rules", "id": "keys", "known_delegates": delegates, "rules": [
            {"id": "c1", "applies_to": {"holders": ["client"]}, "forbid": ["withdraw"]}]}

    old_docs, new_docs = small_docs(), small_docs()
    def cls(name: str, haircut: str) -> dict[str, str]:
        return {"name": name, "haircut": haircut}

    old_docs["hair.yaml"]["defi_classes"] = [cls("aave_v3", "0.2"), cls("wsteth", "0.1")]
    new_docs["hair.yaml"]["defi_classes"] = [cls("aave_v3", "0.3"), cls("erc4626", "0.1")]
    old_docs["keys.yaml"] = keys([{"address": NEW_ADDR, "label": "old delegate"}])
    new_docs["keys.yaml"] = keys([{"address": ALPHA_COLD, "label": "new delegate", "chain": "ethereum"}])
    changes = diff(load_bundle(to_files(old_docs)), load_bundle(to_files(new_docs)))
    got = {(c.subject, c.effect) for c in changes}
    assert got == {("defi:aave_v3", "stricter"), ("defi:wsteth", "stricter"), ("defi:erc4626", "looser"),
                   (ALPHA_COLD, "looser"), (NEW_ADDR, "stricter")}
    assert "haircut on DeFi class aave_v3 moves from 0.2 to 0.3 (stricter)" in [c.text for c in changes]
    assert diff(load_bundle(to_files(new_docs)), load_bundle(to_files(new_docs))) == []


def test_screening_sources_advisory_or_authoritative() -> None:
    base = small_docs()
    base["limits.yaml"]["guards"]["screening"] = {"id": "g-screen", "advisory": ["lists"]}
    a = load_bundle(to_files(base))
    assert a.guards is not None and a.guards.screening_advisory == frozenset({"lists"})
    assert a.guards.screening_id == "g-screen" and a.rules["g-screen"].kind == "guard"
    looser = small_docs()
    looser["limits.yaml"]["guards"]["screening"] = {"id": "g-screen", "advisory": ["oracle:ethereum"]}
    got = {(c.effect, c.text.split(": when")[0]) for c in diff(a, load_bundle(to_files(looser)))}
    assert got == {("looser", "screening source oracle:ethereum becomes advisory"),
                   ("stricter", "screening source lists becomes authoritative")}
    gone = {(c.effect, c.text) for c in diff(a, load_bundle(to_files(small_docs())))}
    assert ("changed", "which screening sources only advise now comes from the config") in gone
    bad = small_docs()
    bad["limits.yaml"]["guards"]["screening"] = {"id": "g-screen", "advisory": ["oracle"]}
    with pytest.raises(PolicyError, match="advisory"):
        load_bundle(to_files(bad))
