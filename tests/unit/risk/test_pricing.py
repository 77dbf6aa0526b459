"""Price selection: priority, cross-check with conservative prices, staleness, provenance."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D  # noqa: N817

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import PriceSourceKind as K
from primeguard.risk.pricing import exact_seconds, select_prices
from tests.unit.risk.helpers import PARAMS, T0, at, q


def test_priority_picks_the_oracle_and_records_provenance():
    book = select_prices([q("ETH", "3001", K.VENUE_MARK, age=2), q("ETH", "3000", K.ORACLE, age=40)], T0, PARAMS)
    pick = book.picks["ETH"]
    assert (pick.collateral, pick.liability, pick.reference) == (D(3000), D(3000), D(3000))
    assert (pick.source, pick.source_id, pick.age_s) == ("oracle", "oracle:ETH", D(40))
    assert pick.deviation == D(1) / D(3000)  # within 2 %: no finding, reference price both ways
    assert not book.findings
    assert [s.source_id for s in pick.sources] == ["oracle:ETH", "venue_mark:ETH"]
    assert pick.to_json_dict()["age_s"] == "40" and pick.to_json_dict()["collateral"] == "3000"


def test_deviation_beyond_threshold_values_collateral_low_and_liabilities_high():
    book = select_prices([q("ETH", "3000"), q("ETH", "3100", K.VENUE_MARK)], T0, PARAMS)
    assert book.collateral("ETH") == D(3000) and book.liability("ETH") == D(3100)
    assert book.reference("ETH") == D(3000)  # the oracle still ranks first
    [finding] = book.findings
    assert finding.code == FindingCode.PRICE_DEVIATION and finding.details["deviation"] == str(D(100) / D(3000))
    pick = book.picks["ETH"]
    assert (pick.collateral_source_id, pick.liability_source_id) == ("oracle:ETH", "venue_mark:ETH")


def test_exactly_at_the_threshold_is_not_a_deviation():
    book = select_prices([q("ETH", "3000"), q("ETH", "3060", K.VENUE_MARK)], T0, PARAMS)  # 2.000 %
    assert not book.findings and book.collateral("ETH") == book.liability("ETH") == D(3000)


def test_stale_sources_are_ignored_with_a_finding_per_kind():
    params = replace(PARAMS, price_max_age_by_source={K.VENUE_MARK: 60})
    book = select_prices([q("BTC", "60000", age=7201), q("BTC", "60100", K.VENUE_MARK, age=61),
                          q("ETH", "3000", K.VENUE_MARK, age=60)], T0, params, wanted=["BTC", "ETH"])
    codes = sorted(f.code for f in book.findings)
    assert codes == sorted([FindingCode.ORACLE_STALE, FindingCode.DATA_STALE, FindingCode.PRICE_MISSING])
    assert book.missing == frozenset({"BTC"}) and book.collateral("BTC") is None
    assert book.collateral("ETH") == D(3000)  # 60 s old with a 60 s budget: still fresh


def test_a_feed_heartbeat_by_source_id_overrides_the_kind_budget():
    quotes = [q("USDC", "1", age=80_000, sid="ethereum:0xfeed")]
    assert "USDC" not in select_prices(quotes, T0, PARAMS).picks  # default budget 3600 s
    assert select_prices(quotes, T0, PARAMS, max_age_s={"ethereum:0xfeed": 86_400}).collateral("USDC") == D(1)


def test_non_positive_and_cross_check_only_quotes_never_price_an_asset():
    book = select_prices([q("ETH", "0"), q("USDT", "1", K.FIXED)], T0, PARAMS, wanted=["ETH", "USDT"])
    assert book.missing == frozenset({"ETH", "USDT"})
    assert {f.code for f in book.findings} == {FindingCode.ORACLE_NON_POSITIVE, FindingCode.PRICE_MISSING}


def test_a_fixed_peg_cross_checks_a_depegged_stablecoin():
    book = select_prices([q("USDC", "0.97"), q("USDC", "1", K.FIXED)], T0, PARAMS)
    assert book.collateral("USDC") == D("0.97") and book.liability("USDC") == D(1)
    assert [f.code for f in book.findings] == [FindingCode.PRICE_DEVIATION]


def test_newest_quote_per_source_wins_and_usd_is_the_unit():
    old = q("ETH", "2000", age=100)
    new = q("ETH", "3000", age=10)
    book = select_prices([new, old], T0, PARAMS)
    assert book.collateral("ETH") == D(3000) and len(book.picks["ETH"].sources) == 1
    assert book.collateral("USD") == book.liability("USD") == D(1)


def test_age_is_exact_and_a_source_clock_ahead_counts_as_new():
    assert exact_seconds(at(1.000001) - T0) == D("1.000001")
    ahead = select_prices([q("ETH", "3000", age=-5)], T0, PARAMS)
    assert ahead.picks["ETH"].age_s == 0
