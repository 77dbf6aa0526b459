"""Risk views on the dashboard and the API: the book's exposure per venue, interest shown apart
from the principal, and each client's tier eligibility from its stored track record."""

from __future__ import annotations

from decimal import Decimal

from tests.web.conftest import login


def test_book_exposure_per_venue_sums_the_valued_clients(client, seeded):
    data = client.get("/api/overview", headers=seeded.auth("vera")).json()
    book = data["book_exposure"]
    assert book["blind_clients"] == ["gamma"]  # blind: left out, never summed as zero
    by = {v["venue"]: v for v in book["venues"]}
    assert set(by) == {"binance", "evm", "bybit", "dydx"}
    latest = {c["client_id"]: c for c in data["clients"]}
    alpha = Decimal(latest["alpha"]["equity"]) + Decimal(latest["alpha"]["loan"])  # seeded collateral
    assert Decimal(by["binance"]["usd"]) == alpha * Decimal("0.7")
    total = Decimal(book["total_usd"])
    assert sum(Decimal(v["usd"]) for v in book["venues"]) == total
    assert Decimal(by["binance"]["share"]) == Decimal(by["binance"]["usd"]) / total
    login(client, seeded.tokens["vera"])
    page = client.get("/").text
    assert 'id="book-exposure"' in page and "Book exposure per venue" in page and "1 blind client(s) left out" in page


def test_interest_is_shown_apart_from_the_principal(client, seeded):
    d = client.get("/api/clients/alpha", headers=seeded.auth("vera")).json()
    assert d["loan"] == {"asset": "USDC", "principal": "8987654.33", "accrued_interest": "12345.67",
                         "owed_usd": "9000000", "rate": "0.08"}
    login(client, seeded.tokens["vera"])
    page = client.get("/clients/alpha").text
    assert "Interest accrued" in page and "$12,345.67" in page
    assert "principal $8,987,654.33 + interest $12,345.67 at 8.00 % a year" in page


def test_eligibility_from_the_track_record(client, seeded):
    d = client.get("/api/clients/beta", headers=seeded.auth("vera")).json()
    rev = d["eligibility"]
    assert rev["client"] == "beta" and rev["tier"] == "standard"
    assert [t["tier"] for t in rev["tiers"]] == ["new", "standard", "proven"]
    # beta went to halt in the seeded history: the record restarts after it, and it is evidence
    assert rev["record"]["last_margin_call"] is not None and rev["action"] == "demote"
    login(client, seeded.tokens["vera"])
    page = client.get("/clients/beta").text
    assert 'id="eligibility"' in page and "Tier eligibility" in page and "demote to new" in page
    # alpha's LTV climbed all along: its own money fell, beyond proven's 5 % drawdown
    alpha = client.get("/api/clients/alpha", headers=seeded.auth("vera")).json()["eligibility"]
    assert alpha["action"] == "demote" and alpha["why"][0].startswith("worst drawdown ")
    # gamma (lowest tier): under a day of history earns nothing above, and is never demoted for it
    gamma = client.get("/api/clients/gamma", headers=seeded.auth("vera")).json()["eligibility"]
    assert gamma["action"] == "hold" and gamma["why"][0] == "standard: 0 days of track record, standard needs 30"
