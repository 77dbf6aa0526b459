"""End to end: ``collect``/``collect_many`` through the real IndexerClient and QueryNodeClient
against DydxSimulators. Faults give blind spots and unknown capabilities, never a crash."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tests.waiting import run_within

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Capability, Holder, PriceSourceKind, VenueKind
from primeguard.policy.engine import evaluate_capabilities
from primeguard.policy.inputs import CapabilityInput
from primeguard.policy.loader import load
from primeguard.sandbox.dydx.state import derive_address
from primeguard.sandbox.faults import FaultConfig
from primeguard.venues.dydx import DydxCollector, collect, collect_many

REPO_POLICIES = __import__("pathlib").Path(__file__).resolve().parents[3] / "policies"


def codes(snap) -> set[FindingCode]:
    return {f.code for f in snap.findings}


HANG_TIMEOUT_S = 1.0  # our timeout in the cases where the simulator hangs (for 600 s: past any deadline)


def fast(cfg, **over):
    """A config whose timeouts end a hang in seconds, yet are generous for a simulator that answers
    at once on a loaded machine (a tight timeout would turn e.g. a rate limit into "unreachable")."""
    return cfg.model_copy(update={"timeout_s": 5.0, **over})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_balances_positions_prices_and_equity(sims):
    alpha, beta = sims.config_accounts()
    now = datetime.now(UTC)
    snap_a, snap_b = asyncio.run(collect_many([alpha, beta], now))
    assert snap_a.ok and snap_b.ok and snap_a.observed_at == now
    assert snap_a.account.venue is VenueKind.DYDX and snap_a.account.address == alpha.address
    # equity: sub 0 = -20000 + 0.5×60000 = 10000; sub 1 = 9000 - 2×3000 = 3000
    assert Decimal(snap_a.equity_usd) == Decimal(13000)
    pos = {p.instrument: p for p in snap_a.positions}
    assert pos["BTC-USD"].size == Decimal("0.5") and pos["ETH-USD"].size == Decimal(-2)
    assert pos["ETH-USD"].underlying == "ETH" and pos["ETH-USD"].mark_price == Decimal(3000)
    assert pos["BTC-USD"].unrealized_pnl == Decimal(5000) and pos["ETH-USD"].unrealized_pnl == Decimal(1000)
    # balances exclude unrealized PnL: balance + PnL == the indexer's equity, per subaccount and in total
    usdc = {b.source.rsplit(":", 1)[1]: b.quantity for b in snap_a.balances}
    assert usdc == {"0": Decimal(5000), "1": Decimal(2000)}
    assert sum(usdc.values()) + sum(p.unrealized_pnl for p in snap_a.positions) == Decimal(snap_a.equity_usd)
    assert all(b.asset == "USDC" and isinstance(b.quantity, Decimal) for b in snap_a.balances)
    prices = {q.asset: q for q in snap_a.prices}
    assert prices["BTC"].price == Decimal(60000) and prices["BTC"].source is PriceSourceKind.DYDX_ORACLE
    assert prices["BTC"].source_id == "dydx:BTC-USD" and "USDC" not in prices
    assert [b.quantity for b in snap_b.balances] == [Decimal(5000)] and snap_b.positions == ()


def test_credentials_from_the_node_and_v3_keys(sims):
    alpha, beta = sims.config_accounts()
    snap_a, snap_b = asyncio.run(collect_many([alpha, beta]))
    [trading] = snap_a.credentials
    assert trading.kind == "dydx_authenticator" and trading.holder is Holder.CLIENT
    assert trading.capabilities == {Capability.TRADE_FUTURES} and not trading.moves_funds
    assert trading.details["trade_subaccounts"] == [0] and trading.details["requires_signature"] is True
    assert not codes(snap_a)
    by_kind = {c.kind: c for c in snap_b.credentials}
    bare, stark = by_kind["dydx_authenticator"], by_kind["dydx_v3_stark"]
    assert Capability.SIGN_ANYTHING in bare.capabilities and bare.can(Capability.WITHDRAW)
    assert stark.capabilities >= {Capability.FAST_WITHDRAW} and stark.holder is Holder.CLIENT
    assert "any L1 address" in stark.details["explanation"]
    assert {FindingCode.DYDX_KEY_CAN_MOVE_FUNDS, FindingCode.DYDX_KEY_CAN_GRANT,
            FindingCode.DYDX_V3_FAST_WITHDRAW} <= codes(snap_b)


def test_example_policies_judge_the_collected_keys(sims):
    """The repo's key-layer policy allows the trading key and denies the bare key and the v3 key."""
    snaps = asyncio.run(collect_many(sims.config_accounts()))
    policy = load(REPO_POLICIES)
    accounts = {s.account.id: s.account for s in snaps}
    alpha = evaluate_capabilities(policy, CapabilityInput(credentials=list(snaps[0].credentials), accounts=accounts))
    beta = evaluate_capabilities(policy, CapabilityInput(credentials=list(snaps[1].credentials), accounts=accounts))
    assert alpha.decision.outcome.value == "allow"
    assert beta.decision.outcome.value == "deny"
    assert {f.code for f in beta.findings} >= {FindingCode.DYDX_KEY_CAN_MOVE_FUNDS, FindingCode.DYDX_V3_FAST_WITHDRAW}


def test_runtime_changes_show_in_the_next_sweep(sims):
    alpha = sims.config_accounts()[0]
    sims.set_authenticators("alpha", [{"id": 3, "type": "AllOf", "config": [
        {"type": "SignatureVerification"},
        {"type": "AnyOf", "config": [
            {"type": "MessageFilter", "config": ["/dydxprotocol.clob.MsgPlaceOrder"]},
            {"type": "MessageFilter", "config": ["/dydxprotocol.sending.MsgWithdrawFromSubaccount"]}]},
        {"type": "SubaccountFilter", "config": [0]}]}])
    sims.set_oracle_price("BTC-USD", Decimal(30000))
    snap = asyncio.run(collect(alpha))
    [cred] = snap.credentials
    assert cred.details["fund_moving_messages"] == ["/dydxprotocol.sending.MsgWithdrawFromSubaccount"]
    assert Capability.WITHDRAW in cred.capabilities and FindingCode.DYDX_KEY_CAN_MOVE_FUNDS in codes(snap)
    assert Decimal(snap.equity_usd) == Decimal(-20000 + 15000 + 3000)
    assert {p.instrument: p.mark_price for p in snap.positions}["BTC-USD"] == Decimal(30000)


def test_unsigned_and_unknown_authenticators_end_to_end(sims):
    alpha = sims.config_accounts()[0]
    sims.set_authenticators("alpha", [
        # Both refused by the chain's keeper: stored anyway to play a node that misbehaves.
        {"id": 4, "type": "AnyOf", "encoding": "bytes", "bypass_keeper": True, "config": [
            {"type": "SignatureVerification"},
            {"type": "MessageFilter", "config": ["/cosmos.bank.v1beta1.MsgSend"]}]},
        {"id": 5, "type": "SmartAccountV9", "config": "whatever", "bypass_keeper": True},
    ])
    sims.set_raw_authenticator("alpha", 6, "AllOf", b"[{not json")
    snap = asyncio.run(collect(alpha))
    creds = {c.details["authenticator_id"]: c for c in snap.credentials}
    assert creds[4].details["anyone_may_submit"] is True
    assert creds[5].capabilities == {Capability.UNKNOWN} == creds[6].capabilities
    assert {FindingCode.DYDX_KEY_UNSIGNED_PATH, FindingCode.AUTHENTICATOR_UNKNOWN} <= codes(snap)
    assert snap.ok  # the balances are fine: only key power is in question


@pytest.mark.parametrize(("fault", "code"), [
    (FaultConfig(down=True), FindingCode.VENUE_UNREACHABLE),
    (FaultConfig(error_5xx_rate=1), FindingCode.VENUE_UNREACHABLE),
    (FaultConfig(timeout_rate=1, timeout_s=600), FindingCode.VENUE_UNREACHABLE),  # hangs past the deadline
    (FaultConfig(rate_limit_every=1), FindingCode.VENUE_RATE_LIMITED),
    (FaultConfig(malformed_rate=1), FindingCode.VENUE_BAD_RESPONSE),
    (FaultConfig(malformed_rate=1, only_paths=("/subaccountNumber/1",)), FindingCode.VENUE_BAD_RESPONSE),
])
def test_indexer_faults_are_blind_spots(sims, fault, code):
    alpha = fast(sims.config_accounts()[0], **({"timeout_s": HANG_TIMEOUT_S} if fault.timeout_rate else {}))
    sims.set_faults("dydx", fault)
    snap = run_within(collect(alpha), what="collect against a faulty indexer")  # our timeouts end any hang
    assert not snap.ok and snap.balances == () and snap.positions == () and snap.equity_usd is None
    blind = [f for f in snap.findings if f.code is code]
    assert blind and blind[0].is_blind_spot and blind[0].subject == alpha.id and blind[0].client_id == "alpha"
    assert snap.credentials and snap.credentials[0].capabilities == {Capability.TRADE_FUTURES}  # node still read


def test_unknown_address_404_and_geo_block_403(sims):
    alpha = fast(sims.config_accounts()[0])
    ghost = alpha.model_copy(update={"id": "ghost-dydx", "address": derive_address("ghost", 0)})
    snap = asyncio.run(collect(ghost))
    assert not snap.ok and FindingCode.VENUE_BAD_RESPONSE in codes(snap)
    assert "not found" in snap.findings[0].message
    sims.set_geo_blocked(True)
    snap = asyncio.run(collect(alpha))
    assert not snap.ok and FindingCode.VENUE_AUTH_FAILED in codes(snap)
    assert "geo-blocked" in snap.findings[0].message


def test_stale_data_keeps_last_good_read_for_humans(sims):
    alpha = fast(sims.config_accounts()[0])
    collector = DydxCollector()
    good = asyncio.run(collector.collect(alpha))
    assert good.ok
    sims.set_faults("dydx", FaultConfig(down=True))
    bad = asyncio.run(collector.collect(alpha))
    [blind] = [f for f in bad.findings if f.code is FindingCode.VENUE_UNREACHABLE]
    assert blind.details["last_good_at"] == good.observed_at.isoformat()
    assert blind.details["last_equity_usd"] == "13000" and "last good read" in blind.message
    assert bad.balances == ()  # stale numbers are never handed on as current
    sims.set_faults("dydx", FaultConfig())
    assert asyncio.run(collector.collect(alpha)).ok  # recovers by itself


def test_lagging_indexer_is_data_stale(sims):
    alpha = fast(sims.config_accounts()[0], max_age_s=30)
    sims.set_indexer_lag(120)
    snap = asyncio.run(collect(alpha))
    assert not snap.ok and FindingCode.DATA_STALE in codes(snap)


def test_indexer_not_listening(sims):
    alpha = fast(sims.config_accounts()[0], indexer_url=f"http://127.0.0.1:{free_port()}")
    snap = asyncio.run(collect(alpha))
    assert not snap.ok and FindingCode.VENUE_UNREACHABLE in codes(snap)


@pytest.mark.parametrize("how", ["port_closed", "down", "slow", "error", "rate_limited"])
def test_node_faults_make_key_power_unknown(sims, how):
    # "slow" hangs for 600 s: our (shorter) timeout must end it; the others answer at once, so a
    # generous timeout keeps the classification independent of the machine's load
    alpha = fast(sims.config_accounts()[0], **({"timeout_s": 2.0} if how == "slow" else {}))
    if how == "port_closed":
        alpha = alpha.model_copy(update={"node_grpc": f"127.0.0.1:{free_port()}"})
    else:
        fault = {"down": FaultConfig(down=True), "slow": FaultConfig(latency_ms=600_000),
                 "error": FaultConfig(error_5xx_rate=1), "rate_limited": FaultConfig(rate_limit_every=1)}[how]
        sims.set_faults("dydx-node", fault)
    snap = run_within(collect(alpha), what=f"collect with a {how} node")
    assert snap.ok and snap.balances  # partial: balances known
    [cred] = snap.credentials
    assert cred.capabilities == {Capability.UNKNOWN} and cred.can(Capability.WITHDRAW)
    node_findings = [f for f in snap.findings if f.venue == "dydx-node"]
    expected = FindingCode.VENUE_RATE_LIMITED if how == "rate_limited" else FindingCode.VENUE_UNREACHABLE
    assert node_findings and node_findings[0].code is expected
    assert FindingCode.AUTHENTICATOR_UNKNOWN in codes(snap)


def test_node_garbage_configs_are_unknown(sims):
    alpha = sims.config_accounts()[0]
    sims.set_faults("dydx-node", FaultConfig(malformed_rate=1))
    snap = asyncio.run(collect(alpha))
    assert [c.capabilities for c in snap.credentials] == [frozenset({Capability.UNKNOWN})]
    assert FindingCode.AUTHENTICATOR_UNKNOWN in codes(snap)


def test_both_down_still_reports_v3_keys(sims):
    beta = fast(sims.config_accounts()[1])
    sims.set_faults("dydx", FaultConfig(down=True))
    sims.set_faults("dydx-node", FaultConfig(down=True))
    snap = asyncio.run(collect(beta))
    assert not snap.ok
    kinds = sorted(c.kind for c in snap.credentials)
    assert kinds == ["dydx_authenticator", "dydx_v3_stark"]
    assert {FindingCode.VENUE_UNREACHABLE, FindingCode.AUTHENTICATOR_UNKNOWN,
            FindingCode.DYDX_V3_FAST_WITHDRAW} <= codes(snap)


def test_no_node_configured_is_said(sims):
    alpha = sims.config_accounts()[0].model_copy(update={"node_grpc": None})
    snap = asyncio.run(collect(alpha))
    assert snap.ok and snap.credentials == ()
    assert FindingCode.AUTHENTICATOR_UNKNOWN in codes(snap)


def test_one_bad_account_does_not_spoil_the_others(sims):
    alpha, beta = (fast(c) for c in sims.config_accounts())
    sims.set_faults("dydx", FaultConfig(error_5xx_rate=1, only_paths=(alpha.address,)))
    snap_a, snap_b = asyncio.run(collect_many([alpha, beta]))
    assert not snap_a.ok and snap_b.ok and snap_b.balances


def test_missing_oracle_price_is_flagged(sims_factory, world):
    sims = sims_factory(world(), oracle_prices={"BTC-USD": Decimal(60000)})
    sims.set_position("alpha", 0, "SOL-USD", Decimal(3), Decimal(100))
    with sims.world.lock:
        del sims.world.oracle["SOL-USD"]  # the market vanished from perpetualMarkets
    snap = asyncio.run(collect(sims.config_accounts()[0]))
    assert snap.ok and FindingCode.PRICE_MISSING in codes(snap)
    sol = next(p for p in snap.positions if p.instrument == "SOL-USD")
    assert sol.size == 3 and sol.unrealized_pnl == 0


def test_many_accounts_at_once_with_a_slow_node(sims_factory, world):
    clients = [{"id": f"firm-{i}", "dydx": [{"subaccounts": [{"number": 0, "usdc": str(100 + i)}],
                                              "authenticators": [{"id": 1, "type": "SignatureVerification"}]}]}
               for i in range(24)]
    sims = sims_factory(world(clients=clients))
    sims.set_faults("dydx-node", FaultConfig(latency_ms=100))
    snaps = run_within(collect_many([c.model_copy(update={"timeout_s": 10.0}) for c in sims.config_accounts()]),
                       what="24 accounts against a slow node")
    assert all(s.ok for s in snaps) and len(snaps) == 24
    assert all(s.credentials[0].capabilities != {Capability.UNKNOWN} for s in snaps)
    assert [s.balances[0].quantity for s in snaps] == [Decimal(100 + i) for i in range(24)]


def test_an_internal_error_fails_closed(sims, monkeypatch):
    """Our own bug (not a venue fault) still yields a blind snapshot with unknown key power."""
    import primeguard.venues.dydx.collector as mod

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(mod, "build_indexer_part", broken)  # our code, not the vendor client
    snap = asyncio.run(collect(sims.config_accounts()[0]))
    assert not snap.ok and FindingCode.VENUE_BAD_RESPONSE in codes(snap)
    assert snap.credentials[0].capabilities == {Capability.UNKNOWN}
