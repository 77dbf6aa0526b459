"""Screening's pure core (verdicts, fail closed, cache) and the list readers (SDN XML, CSV)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from primeguard.domain.decision import Decision, Outcome, ReasonCode
from primeguard.domain.errors import InputError
from primeguard.screening.core import Screening, ScreeningCache, SourceAnswer, SourceStatus, merge, screening_decision
from primeguard.screening.lists import parse_csv, parse_sdn_xml

T0 = datetime(2026, 11, 25, tzinfo=UTC)
A = "0x506fEDd589E0BB429f2b312Dae2eDdd0a7c2F794"


def _s(*answers: tuple[str, SourceStatus]) -> Screening:
    return Screening(A, "ethereum", tuple(SourceAnswer(n, st) for n, st in answers), T0)


def test_verdicts_fail_closed():
    assert screening_decision(_s(("oracle:ethereum", SourceStatus.CLEAR))) is None
    hit = screening_decision(_s(("oracle:ethereum", SourceStatus.CLEAR), ("list:ofac", SourceStatus.HIT)))
    assert hit is not None and hit.reasons == (ReasonCode.SANCTIONED,)
    down = screening_decision(_s(("oracle:ethereum", SourceStatus.UNAVAILABLE), ("lists", SourceStatus.CLEAR)))
    assert down is not None and down.reasons == (ReasonCode.SCREENING_UNAVAILABLE,)
    assert screening_decision(_s()) is not None  # no source at all: not screened, denied
    advisory = frozenset({"oracle"})
    assert screening_decision(_s(("oracle:ethereum", SourceStatus.UNAVAILABLE), ("lists", SourceStatus.CLEAR)),
                              advisory) is None
    # advisory never silences a hit
    assert screening_decision(_s(("oracle:ethereum", SourceStatus.HIT)), advisory) is not None


def test_merge_keeps_the_denial():
    allow = Decision(Outcome.ALLOW, (ReasonCode.ALLOWED,), (), "ok", "h")
    deny = Decision.deny(ReasonCode.SANCTIONED, "listed")
    merged = merge(allow, deny)
    assert merged.reasons == (ReasonCode.SANCTIONED,) and merged.policy_hash == "h"
    both = merge(Decision.deny(ReasonCode.NOT_ALLOWLISTED, "x"), deny)
    assert set(both.reasons) == {ReasonCode.SANCTIONED, ReasonCode.NOT_ALLOWLISTED}
    assert merge(allow, None) is allow


def test_cache_ttl_and_no_caching_of_failures():
    cache = ScreeningCache(60)
    clear = _s(("oracle:ethereum", SourceStatus.CLEAR))
    cache.put(clear)
    assert cache.get("ethereum", A.lower(), T0 + timedelta(seconds=59)) is clear
    assert cache.get("ethereum", A, T0 + timedelta(seconds=60)) is None
    cache2 = ScreeningCache(60)
    cache2.put(_s(("oracle:ethereum", SourceStatus.UNAVAILABLE)))
    assert cache2.get("ethereum", A, T0) is None


SDN = """<?xml version="1.0" encoding="utf-8"?>
<Sanctions xmlns="urn:x">
  <DateOfIssue><Year>2026</Year><Month>1</Month><Day>9</Day></DateOfIssue>
  <ReferenceValueSets><FeatureTypeValues>
    <FeatureType ID="345">Digital Currency Address - ETH</FeatureType>
    <FeatureType ID="344">Digital Currency Address - XBT</FeatureType>
  </FeatureTypeValues></ReferenceValueSets>
  <DistinctParties><DistinctParty FixedRef="7"><Profile>
    <Feature FeatureTypeID="345"><FeatureVersion><VersionDetail>{a}</VersionDetail></FeatureVersion></Feature>
    <Feature FeatureTypeID="344"><FeatureVersion><VersionDetail>bc1qxyz</VersionDetail></FeatureVersion></Feature>
  </Profile></DistinctParty></DistinctParties>
</Sanctions>
"""


def test_sdn_xml(tmp_path: Path):
    p = tmp_path / "sdn.xml"
    p.write_text(SDN.format(a=A))
    parsed = parse_sdn_xml(p)
    assert parsed.source_date == "2026-01-09"
    assert [a for a, _ in parsed.addresses] == [A, "bc1qxyz"]


@pytest.mark.parametrize("body, msg", [
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Sanctions>&e;</Sanctions>',
     "refused"),
    ("<Sanctions><unclosed></Sanctions>", "malformed"),
    ("<Other/>", "not an SDN"),
])
def test_sdn_xml_refuses(tmp_path: Path, body: str, msg: str):
    p = tmp_path / "bad.xml"
    p.write_text(body)
    with pytest.raises(InputError, match=msg):
        parse_sdn_xml(p)


def test_sdn_xml_refuses_other_encodings(tmp_path: Path):
    p = tmp_path / "u16.xml"
    p.write_bytes('<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x><Sanctions/>'.encode("utf-16"))
    with pytest.raises(InputError, match="UTF-8"):
        parse_sdn_xml(p)


def test_csv(tmp_path: Path):
    p = tmp_path / "l.csv"
    p.write_text(f"address,label\n{A},mixer\n")
    assert parse_csv(p).addresses == ((A, "mixer"),)
    p.write_text(f"address\n{A}\n0x1234\n")
    with pytest.raises(InputError, match=r"l\.csv:3:"):
        parse_csv(p)
    p.write_text("wallet\nx\n")
    with pytest.raises(InputError, match=r":1: .*address"):
        parse_csv(p)
