"""Bad input gives clear errors before any I/O; simulator config is deterministic and private."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.venues.cex.helpers import fast_pool

from primeguard.config.loader import load_config
from primeguard.config.schema import CexAccountConfig, SecretRef
from primeguard.domain.errors import ConfigError, SandboxError
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Capability
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario, load_scenario
from primeguard.venues.cex import build_exchange, check_accounts, collect


def _cfg_file(tmp_path: Path, accounts: list[dict[str, Any]]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"clients": [{"id": "alpha"}], "cex_accounts": accounts}, sort_keys=False))
    return path


def _raw(acct: CexAccountConfig, **update: Any) -> dict[str, Any]:
    return {**acct.model_dump(mode="json", exclude_none=True), **update}


def test_config_file_errors_name_file_and_line(tmp_path: Path, accounts: dict[str, CexAccountConfig]) -> None:
    good = _raw(accounts["alpha-binance"])
    assert load_config(_cfg_file(tmp_path, [good])).cex_accounts[0].id == "alpha-binance"
    with pytest.raises(ConfigError, match=r"config.yaml:line \d+: cex_accounts.0.venue"):
        load_config(_cfg_file(tmp_path, [_raw(accounts["alpha-binance"], venue="kraken")]))
    with pytest.raises(ConfigError, match="credential reference 'nobody'"):
        load_config(_cfg_file(tmp_path, [_raw(accounts["alpha-binance"], monitor="nobody")]))
    with pytest.raises(ConfigError, match="duplicate id 'alpha-binance'"):
        load_config(_cfg_file(tmp_path, [good, _raw(accounts["alpha-binance"])]))  # no YAML alias


def test_check_accounts_catches_what_bypassed_validation(accounts: dict[str, CexAccountConfig]) -> None:
    a = accounts["alpha-okx"]
    with pytest.raises(ConfigError, match="duplicate CEX account id"):
        check_accounts([a, a])
    with pytest.raises(ConfigError, match="unknown CEX venue 'kraken'"):
        check_accounts([CexAccountConfig.model_construct(**{**dict(a), "venue": "kraken"})])
    with pytest.raises(ConfigError, match="operator credential 'ghost'"):
        check_accounts([CexAccountConfig.model_construct(**{**dict(a), "operator": "ghost"})])
    with pytest.raises(ConfigError, match="unknown CEX venue"):
        build_exchange(CexAccountConfig.model_construct(**{**dict(a), "venue": "kraken"}), None)
    with pytest.raises(ConfigError, match="base_url"):
        build_exchange(a.model_copy(update={"base_url": "127.0.0.1:9"}), None)
    with pytest.raises(ConfigError, match="credential 'ghost' is not configured"):
        build_exchange(a, "ghost")


async def test_unreadable_secret_is_a_finding_not_a_crash(accounts: dict[str, CexAccountConfig],
                                                           tmp_path: Path) -> None:
    a = accounts["alpha-bybit"]
    missing = tmp_path / "gone.secret"

    def point(cred_id: str) -> CexAccountConfig:
        creds = tuple(c.model_copy(update={"secret": SecretRef(file=str(missing))}) if c.id == cred_id else c
                      for c in a.credentials)
        return a.model_copy(update={"credentials": creds})

    async with fast_pool() as pool:
        blind = await collect(point("monitor"), pool=pool)
        partial = await collect(point("client"), pool=pool)
    assert not blind.ok and blind.findings[0].code == FindingCode.BLIND_SPOT
    assert "gone.secret" in blind.findings[0].message
    assert partial.ok
    client = next(c for c in partial.credentials if c.id == "client")
    assert client.capabilities == {Capability.UNKNOWN}
    assert any(f.code == FindingCode.BLIND_SPOT and f.subject == "alpha-bybit/client" for f in partial.findings)


async def test_relative_secret_files_live_beside_the_config_wherever_the_daemon_runs(
        accounts: dict[str, CexAccountConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``secret: {file: keys/x}`` in a config names a file beside that config: the daemon's CEX
    collector (which has no config directory of its own) reads it from another working directory."""
    import shutil
    from datetime import UTC, datetime

    from primeguard.venues.cex.collector import CexCollector

    a = _raw(accounts["alpha-okx"])
    (tmp_path / "conf" / "keys").mkdir(parents=True)
    for cred in a["credentials"]:
        for field in ("api_key", "secret", "passphrase"):
            if "file" in cred.get(field, {}):
                name = f"{cred['id']}.{field}"
                shutil.copy(cred[field]["file"], tmp_path / "conf" / "keys" / name)
                cred[field] = {"file": f"keys/{name}"}
    path = _cfg_file(tmp_path / "conf", [a])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config(Path("..") / "conf" / path.name)
    got = await CexCollector().collect(cfg, datetime.now(UTC))
    [snap] = got.snapshots
    assert snap.ok, [f.message for f in snap.findings]
    assert all(Capability.UNKNOWN not in c.capabilities for c in snap.credentials)


async def test_okx_credential_needs_a_passphrase(accounts: dict[str, CexAccountConfig]) -> None:
    a = accounts["alpha-okx"]
    creds = tuple(c.model_copy(update={"passphrase": None}) if c.id == "monitor" else c for c in a.credentials)
    async with fast_pool() as pool:
        snap = await collect(a.model_copy(update={"credentials": creds}), pool=pool)
    assert not snap.ok and "needs a passphrase" in snap.findings[0].message


def test_scenario_errors(tmp_path: Path) -> None:
    def write(cex: dict[str, Any]) -> Path:
        p = tmp_path / "scn.yaml"
        p.write_text(yaml.safe_dump({"name": "x", "clients": [{"id": "a", "cex": [cex]}]}))
        return p

    with pytest.raises(ConfigError, match="BASE/QUOTE"):
        load_scenario(write({"venue": "okx", "positions": [{"symbol": "BTCUSDT", "size": "1", "entry_price": "1"}]}))
    with pytest.raises(ConfigError, match="duplicate key id"):
        load_scenario(write({"venue": "okx", "keys": [{"id": "k"}, {"id": "k"}]}))
    with pytest.raises(ConfigError, match="venue"):
        load_scenario(write({"venue": "kraken"}))
    twice = Scenario.model_validate({"name": "x", "clients": [{"id": "a", "cex": [
        {"venue": "okx", "sub_account": "same"}, {"venue": "okx", "sub_account": "same"}]}]})
    with pytest.raises(SandboxError, match="appears twice"):
        CexSimulators(twice)


def test_simulator_keys_are_deterministic_and_files_private(tmp_path: Path) -> None:
    data = {"name": "det", "clients": [{"id": "a", "cex": [{"venue": "okx", "keys": [{"id": "k"}]},
                                                           {"venue": "okx"}]}]}
    s1, s2 = CexSimulators(Scenario.model_validate(data)), CexSimulators(Scenario.model_validate(data))
    other = CexSimulators(Scenario.model_validate({**data, "name": "other"}))
    keys = [sorted(k.api_key for k in s.state("okx").keys.values()) for s in (s1, s2, other)]
    assert keys[0] == keys[1] != keys[2]
    with pytest.raises(SandboxError, match="start"):
        s1.config_accounts(tmp_path)
    with s1:
        urls = s1.start()
        assert s1.start() == urls  # idempotent
        accts = s1.config_accounts(tmp_path / "secrets")
        with pytest.raises(KeyError):
            s1.set_faults("kraken", FaultConfig())
    s1.stop()  # idempotent
    assert [a.id for a in accts] == ["a-okx-1", "a-okx-2"]
    assert [c.id for c in accts[1].credentials] == ["monitor"]  # a read-only monitor made when none is listed
    assert accts[0].monitor == "monitor" and accts[0].operator is None
    files = list((tmp_path / "secrets").iterdir())
    assert len(files) == 9 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
