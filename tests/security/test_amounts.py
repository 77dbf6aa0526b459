"""Issue N defect 2: amounts are plain positive decimals within the asset's precision, refused
everywhere else with a clear error and nothing written; a malformed amount already in the store
renders as bounded text on every page and API answer (never a 500)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from primeguard.domain.errors import InputError
from primeguard.store import audit, open_store, repos
from tests.clitools import make_users, run_cli
from tests.json_schemas import check
from tests.store.util import sql, user
from tests.web.conftest import csrf_of, login
from tests.web.seed import DEST, USDC, VAULT

REPO = Path(__file__).resolve().parents[2]

# (amount as typed, what the error must say)
BAD = [
    ("1E-999999999999999999", "exponent"),
    ("1e-5", "exponent"),
    ("1E+3", "exponent"),
    ("5e0", "exponent"),
    ("١٢٣", "ASCII digits"),  # arabic-indic digits
    ("１２３", "ASCII digits"),  # fullwidth digits
    ("1_000", "plain decimal"),
    ("1,000", "plain decimal"),
    ("NaN", "finite"),
    ("sNaN", "finite"),
    ("Infinity", "finite"),
    ("-Infinity", "negative"),
    ("-5", "negative"),
    ("+5", "plain decimal"),
    ("0", "greater than zero"),
    ("0.000000", "greater than zero"),
    ("0.0000001", "more than 6 decimal places"),  # finer than USDC: refused, not rounded to 0
    ("1.1234567", "more than 6 decimal places"),
    (".5", "plain decimal"),
    ("5.", "plain decimal"),
    ("1 000", "plain decimal"),
    ("0x10", "plain decimal"),
    ("9" * 61, "out of range"),
    ("1" * 101, "too long"),
]


@pytest.mark.parametrize(("raw", "why"), BAD)
def test_parse_amount_refuses(raw: str, why: str) -> None:
    from primeguard.domain.money import parse_amount

    with pytest.raises(InputError, match=why):
        parse_amount(raw, 6)


def test_parse_amount_accepts_plain_decimals_exactly() -> None:
    from primeguard.domain.money import parse_amount

    assert parse_amount("1500.25", 6) == (Decimal("1500.25"), 1_500_250_000)
    assert parse_amount("0.000001", 6)[1] == 1
    assert parse_amount(" 42 ", 0)[1] == 42
    assert parse_amount("1.000000000", 6)[1] == 1_000_000  # trailing zeros are not extra precision


# --- through the CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    cfg = {
        "store": {"url": "sqlite:///cli.db"},
        "chains": [{"id": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:9", "max_block_age_s": None}],
        "tokens": [{"symbol": "USDC", "chain": "ethereum", "address": USDC, "decimals": 6, "asset": "USDC"}],
        "clients": [{"id": "alpha", "tier": "proven"}],
        "vaults": [{"id": "alpha-vault", "client": "alpha", "chain": "ethereum", "address": VAULT}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "primeguard.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


# Every form is refused by the parser (test_parse_amount_refuses); through the real CLI, one of each
# kind of refusal (exponent, foreign digits, zero, finer than the asset, too long) keeps the suite fast.
CLI_BAD = ["1E-999999999999999999", "١٢٣", "0", "0.0000001", "1" * 101]


def test_cli_refuses_every_bad_amount_and_writes_nothing(cli_config: Path) -> None:
    tokens = make_users(cli_config, cli_config.parent, {"tom": "treasury"})
    store = open_store(f"sqlite:///{cli_config.parent / 'cli.db'}")
    try:
        with store.session(readonly=True) as s:
            head_before = audit.head(s)[0]
    finally:
        store.close()
    for raw in CLI_BAD:
        out = run_cli("withdraw", "request", "--config", str(cli_config), "--account", "alpha-vault", "--asset", "USDC",
                      "--amount", raw, "--to", DEST, cwd=cli_config.parent, token=tokens["tom"])
        assert out.returncode == 2, (raw, out.stdout, out.stderr)
        assert "error:" in out.stderr and "amount" in out.stderr, (raw, out.stderr)
        assert len(out.stderr) < 600  # a clear line, not the input echoed back in full
    store = open_store(f"sqlite:///{cli_config.parent / 'cli.db'}")
    try:
        with store.session(readonly=True) as s:
            assert repos.list_withdrawals(s) == []
            assert repos.list_decisions(s) == []
            assert audit.head(s)[0] == head_before
    finally:
        store.close()


# --- through the API and the form ------------------------------------------------------------------------------


def _head(seeded):
    with seeded.store.session(readonly=True) as s:
        return audit.head(s), len(repos.list_withdrawals(s))


@pytest.mark.parametrize(("raw", "why"), [b for b in BAD if len(b[0]) <= 64])
def test_api_refuses_bad_amounts_with_422_and_writes_nothing(client, seeded, raw: str, why: str) -> None:
    before = _head(seeded)
    body = {"account_id": "alpha-vault", "asset": "USDC", "amount": raw, "destination": DEST}
    resp = client.post("/api/withdrawals", headers=seeded.auth("tom"), json=body)
    assert resp.status_code == 422, (raw, resp.text)
    assert resp.json()["error"] == "invalid_input"
    assert why in resp.json()["message"], resp.json()
    assert _head(seeded) == before


def test_api_refuses_over_long_amount(client, seeded) -> None:
    before = _head(seeded)
    body = {"account_id": "alpha-vault", "asset": "USDC", "amount": "1" * 5000, "destination": DEST}
    resp = client.post("/api/withdrawals", headers=seeded.auth("tom"), json=body)
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_input"
    assert "1" * 100 not in resp.text
    assert _head(seeded) == before


def test_form_refuses_exponent_amount(client, seeded) -> None:
    csrf = login(client, seeded.tokens["tom"])
    before = _head(seeded)
    fields = {"csrf": csrf, "account_id": "alpha-vault", "asset": "USDC", "destination": DEST}
    resp = client.post("/withdrawals", data={**fields, "amount": "1E-999999999999999999"})
    assert resp.status_code == 422 and "exponent" in resp.text
    assert _head(seeded) == before


# --- rendering whatever is stored ------------------------------------------------------------------------------

STORED = ["1E-999999999999999999", "1E+999999999999999999", "9" * 20000, "NaN", "-Infinity", "12abc",
          "0." + "0" * 5000 + "1"]


@pytest.mark.parametrize("stored", STORED, ids=lambda v: v[:24])
def test_pages_and_api_render_any_stored_amount(client, seeded, stored: str) -> None:
    sql(seeded.store, "UPDATE withdrawals SET amount = :a WHERE id = :i", a=stored, i=seeded.pending_withdrawal)
    listed = client.get("/api/withdrawals", headers=seeded.auth("vera"))
    assert listed.status_code == 200, listed.text[:500]
    amounts = [w["amount"] for w in listed.json()["items"] if w["id"] == seeded.pending_withdrawal]
    assert len(amounts) == 1 and len(amounts[0]) <= 200
    one = client.get(f"/api/withdrawals/{seeded.pending_withdrawal}", headers=seeded.auth("vera"))
    assert one.status_code == 200 and len(one.json()["amount"]) <= 200
    login(client, seeded.tokens["carol"])  # carol may approve: the confirm text shows the amount too
    for path in ("/withdrawals", "/"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert len(page.text) < 400_000
    assert csrf_of(client, "/withdrawals")


def test_display_amount_is_bounded_for_anything() -> None:
    from primeguard.domain.money import display_amount

    for value in [*STORED, Decimal("1E-999999999999999999"), Decimal("NaN"), Decimal("1E+999999"), None, object(),
                  b"\xff" * 10, "١٢٣"]:
        text = display_amount(value)
        assert isinstance(text, str) and len(text) <= 48
    assert display_amount("1500.2500") == "1500.2500"
    assert display_amount(Decimal("1E-8")) == "0.00000001"


def test_cli_list_renders_a_stored_absurd_amount(cli_config: Path) -> None:
    store = open_store(f"sqlite:///{cli_config.parent / 'cli.db'}", migrate=True)
    tom = user(store, "tom")
    with store.session() as s:
        repos.create_withdrawal(s, client_id="alpha", account_id="alpha-vault", venue="evm", chain="ethereum",
                                asset="USDC", amount="5", destination=DEST, requested_by_id=tom,
                                approval_digest="d" * 64, withdrawal_id="w1")
    sql(store, "UPDATE withdrawals SET amount = '1E-999999999999999999'")
    store.close()
    for extra in ((), ("--json",)):
        out = _cli("withdraw", "list", "--config", str(cli_config), *extra, cwd=cli_config.parent)
        assert out.returncode == 0, out.stderr[-2000:]
        assert len(out.stdout) < 10_000
    assert json.loads(out.stdout)["withdrawals"][0]["amount"] == "1.000000e-999999999999999999"
    check("withdrawals", json.loads(out.stdout))
