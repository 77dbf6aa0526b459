"""Bad scenarios are rejected with file, line and field before anything starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from primeguard.domain.errors import ConfigError
from primeguard.sandbox.control import sandbox_up
from tests.conftest import write_yaml

BASE = {"name": "bad", "feeds": [{"asset": "ETH", "answer": "3000"}],
        "clients": [{"id": "firm-a", "wallets": [{"native": "1", "tokens": {"USDC": "5"}}]}]}


def _anvils() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "anvil"], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda d: d["clients"][0]["wallets"][0].update(address="0xa0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
         "checksum"),
        (lambda d: d["clients"][0]["wallets"][0]["tokens"].update(DOGE="1"), "unknown token 'DOGE'"),
        (lambda d: d["clients"][0]["wallets"][0].update(native="-1"), "greater than or equal to 0"),
        (lambda d: d["feeds"][0].pop("answer"), "feeds.0.answer: Field required"),
        (lambda d: d["clients"][0].update(color="red"), "Extra inputs are not permitted"),
        (lambda d: d["feeds"][0].update(answer="NaN"), "feeds.0.answer"),
    ],
)
def test_rejected_with_file_and_field_nothing_started(tmp_path: Path, mutate, expect):
    import copy

    data = copy.deepcopy(BASE)
    mutate(data)
    path = write_yaml(tmp_path / "scenario.yaml", data)
    before = _anvils()
    with pytest.raises(ConfigError) as info:
        sandbox_up(path, tmp_path / "sb")
    msg = str(info.value)
    assert str(path) in msg and "line " in msg and expect in msg
    assert _anvils() == before
    assert not (tmp_path / "sb").exists()


def test_config_with_bad_checksum_names_file_and_line(tmp_path: Path):
    from primeguard.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "chains:\n  - id: ethereum\n    chain_id: 1\n    rpc_url: http://127.0.0.1:1\n"
        "clients:\n  - id: a\nwallets:\n  - id: w\n    client: a\n    chain: ethereum\n"
        "    address: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48'\n"
    )
    with pytest.raises(ConfigError, match=r"config.yaml:line 11: wallets.0.address: .*checksum"):
        load_config(path)
