"""The toolchain as make test uses it: tools are found, missing ones fail clearly, the Foundry
suite passes, and the ABI shipped in the package equals the compiled contract's."""

from __future__ import annotations

import json
import subprocess
from importlib import resources

import pytest

from primeguard.domain.errors import ToolchainError
from primeguard.sandbox.toolchain import contract_artifact, contracts_dir, find_tool

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


def test_shipped_batch_reader_abi_matches_build():
    shipped = json.loads(resources.files("primeguard.venues.evm").joinpath("abi/BatchReader.json").read_text())
    assert shipped == contract_artifact("BatchReader")["abi"]


def test_foundry_suite_passes():
    proc = subprocess.run(
        [str(find_tool("forge")), "test", "--offline", "--use", str(find_tool("solc"))],
        cwd=contracts_dir(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 failed" in proc.stdout
