"""The toolchain as make test uses it: tools are found, missing ones fail clearly, the Foundry
suite passes, and the ABI shipped in the package equals the compiled contract's."""

from __future__ import annotations

import subprocess
from importlib import resources

import pytest

from primeguard.domain.errors import ConfigError, ToolchainError
from primeguard.sandbox.toolchain import (
    artifact_text,
    build_contracts,
    built_artifact,
    contracts_dir,
    contracts_up_to_date,
    find_tool,
)
from primeguard.venues.evm.artifacts import SHIPPED, contract_artifact

pytestmark = pytest.mark.chain


def test_tools_found_in_project_install():
    for tool in ("anvil", "forge", "cast", "solc"):
        assert find_tool(tool).is_file()
    assert "infra/toolchain" in str(find_tool("anvil"))


def test_env_override_and_missing_tool(monkeypatch, tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PRIMEGUARD_ANVIL", str(fake))
    assert find_tool("anvil") == fake
    monkeypatch.setenv("PRIMEGUARD_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(ToolchainError, match="not an executable"):
        find_tool("anvil")
    monkeypatch.delenv("PRIMEGUARD_ANVIL")
    with pytest.raises(ToolchainError, match="make setup"):
        find_tool("definitely-not-a-tool")
    # No project install (PRIMEGUARD_HOME elsewhere) and nothing on PATH: the hint names make setup.
    monkeypatch.setenv("PRIMEGUARD_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for tool in ("anvil", "forge", "cast", "solc"):
        with pytest.raises(ToolchainError, match="make setup"):
            find_tool(tool)


def test_solc_shim_reports_native_version():
    proc = subprocess.run([str(find_tool("solc")), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[1] == "Version: 0.8.30+commit.73712a01.Linux.g++"


def test_contract_artifact_has_abi_and_bytecode():
    art = contract_artifact("SandboxAggregator")
    assert set(art) == {"contract", "abi", "bytecode", "deployedBytecode"}
    assert art["bytecode"].startswith("0x") and len(art["deployedBytecode"]) > 2
    names = {f["name"] for f in art["abi"] if f["type"] == "function"}
    assert {"initialize", "updateAnswer", "setRoundData", "latestRoundData", "getRoundData"} <= names
    with pytest.raises(ConfigError, match="no shipped artifact"):
        contract_artifact("NoSuchContract")
    with pytest.raises(ToolchainError, match="no compiled artifact"):
        built_artifact("NoSuchContract")


def test_build_is_skipped_when_current():
    build_contracts()
    assert contracts_up_to_date()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_artifacts_equal_a_fresh_build(name: str):
    """The package's artifacts (what a wheel installs) are byte-for-byte what `make contracts` exports
    from the current sources; `make contracts` rewrites them after a change to contracts/src."""
    shipped = resources.files("primeguard.venues.evm.artifacts").joinpath(f"{name}.json").read_text()
    assert shipped == artifact_text(built_artifact(name)), f"{name}.json is stale: run `make contracts`"


def test_foundry_suite_passes():
    proc = subprocess.run(
        [str(find_tool("forge")), "test", "--offline", "--use", str(find_tool("solc"))],
        cwd=contracts_dir(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 failed" in proc.stdout
