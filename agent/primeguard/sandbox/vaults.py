"""CollateralVaults on the sandbox chain: deployed per client, funded, limits set by the admin,
and the scenario's allowlist seeded as genesis state.

Seeding writes the allowlist mapping's storage directly (``anvil_setStorageAt``) with an
activation time in the past: the same privilege the sandbox uses to place contracts at mainnet
addresses. Warping the chain 48 h forward instead would put the chain clock ahead of the oracle
rounds and of the agent. Entries marked ``pending`` activate one timelock from now.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from primeguard.domain.errors import SandboxError
from primeguard.domain.money import parse_base_units
from primeguard.sandbox.accounts import derived_account, send_tx
from primeguard.sandbox.scenario import VaultScenario
from primeguard.venues.evm.artifacts import contract_artifact

ALLOWLIST_SLOT = 2  # CollateralVault storage layout (forge inspect CollateralVault storageLayout)
TREASURY_KEY_INDEX, GUARDIAN_KEY_INDEX = 60, 61
COMPLIANCE_KEY_INDEX = 1  # anvil's unlocked account 1: the vaults' compliance role
NATIVE = "0x0000000000000000000000000000000000000000"


@dataclass
class DeployedVault:
    client: str
    chain: str
    address: str
    timelock_s: int


def asset_address(symbol: str, tokens: dict[str, tuple[str, int, str]]) -> tuple[str, int]:
    if symbol == "ETH":
        return NATIVE, 18
    addr, decimals, _ = tokens[symbol]
    return addr, decimals



def deploy_vault(w3: Web3, client: str, spec: VaultScenario, tokens: dict[str, tuple[str, int, str]],
                 admin: str, compliance: str) -> DeployedVault:
    art = contract_artifact("CollateralVault")
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(admin, spec.timelock_s).transact(
        {"from": admin})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    if receipt["status"] != 1:
        raise SandboxError("deploying CollateralVault reverted")
    vault = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    treasury, guardian = derived_account(TREASURY_KEY_INDEX)[0], derived_account(GUARDIAN_KEY_INDEX)[0]
    for role, who in ((vault.functions.COMPLIANCE_ROLE().call(), compliance),
                      (vault.functions.TREASURY_ROLE().call(), treasury),
                      (vault.functions.GUARDIAN_ROLE().call(), guardian)):
        send_tx(vault.functions.grantRole(role, who), admin)
    for who in (treasury, guardian):  # the PB's operational gas
        w3.provider.make_request("anvil_setBalance", [who, hex(10**20)])  # type: ignore[arg-type]
    for symbol, limit in spec.limits.items():
        addr, decimals = asset_address(symbol, tokens)
        send_tx(vault.functions.setVelocityLimit(addr, parse_base_units(limit, decimals, what=f"{symbol} limit",
                                                                      allow_zero=True), spec.window_s), admin)
    if spec.native:
        wei = parse_base_units(spec.native, 18, what="vault native balance")
        w3.provider.make_request("anvil_setBalance", [vault.address, hex(wei)])  # type: ignore[arg-type]
    token_abi = contract_artifact("SandboxToken")["abi"]
    for symbol, qty in spec.tokens.items():
        addr, decimals = asset_address(symbol, tokens)
        units = parse_base_units(qty, decimals, what=f"vault {symbol} balance", allow_zero=True)
        if units:
            send_tx(w3.eth.contract(address=addr, abi=token_abi).functions.mint(vault.address, units), admin)
    now = int(w3.eth.get_block("latest")["timestamp"])
    for entry in spec.allowlist:
        addr, _ = asset_address(entry.asset, tokens)
        activates = now + spec.timelock_s if entry.pending else max(1, now - 1)
        seed_allowlist(w3, vault.address, addr, entry.address, activates)
    return DeployedVault(client, spec.chain, vault.address, spec.timelock_s)


def seed_allowlist(w3: Web3, vault: str, asset: str, destination: str, activates_at: int) -> None:
    key = keccak(encode(["address", "address"], [asset, destination]))
    slot = keccak(encode(["bytes32", "uint256"], [key, ALLOWLIST_SLOT]))
    w3.provider.make_request(  # type: ignore[arg-type]
        "anvil_setStorageAt", [vault, "0x" + slot.hex(), "0x" + activates_at.to_bytes(32, "big").hex()])


