"""Build a mainnet-shaped sandbox chain on anvil from a scenario.

Tokens and feeds go to their canonical mainnet addresses (runtime code placed with
``anvil_setCode``, then ``initialize``), so code and tests address them as production does and a
fork of this chain looks like a fork of mainnet. The BatchReader is deployed normally.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from web3 import Web3
from web3.contract import Contract

from primeguard.domain.errors import SandboxError
from primeguard.domain.money import parse_base_units
from primeguard.sandbox.accounts import derived_account, send_tx
from primeguard.sandbox.anvil import AnvilNode
from primeguard.sandbox.safes import SafeDeployment, create_safe, deploy_safe_infra, impersonated
from primeguard.sandbox.scenario import (
    MAINNET_FEEDS,
    MAINNET_TOKENS,
    ChainScenario,
    FeedScenario,
    SafeScenario,
    Scenario,
)
from primeguard.sandbox.vaults import TREASURY_KEY_INDEX, deploy_vault

UINT256_MAX = 2**256 - 1
# Wallets of scenario clients are derived from the sandbox mnemonic starting at this index, leaving
# anvil's first accounts to the deployer and operators.
CLIENT_KEY_OFFSET = 100


@dataclass
class DeployedChain:
    """Addresses of what the sandbox put on one chain."""

    chain: ChainScenario
    node: AnvilNode
    deployer: str
    batch_reader: str
    tokens: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # symbol -> (addr, decimals, asset)
    feeds: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # asset -> (addr, decimals, heartbeat)
    wallets: list[dict[str, Any]] = field(default_factory=list)  # client, address, kind, label
    safe_infra: SafeDeployment | None = None
    vaults: list[Any] = field(default_factory=list)  # DeployedVault
    sanctions_oracle: str | None = None  # SandboxSanctionsList (isSanctioned) address


def _w3(node: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))


def _artifact(name: str) -> dict[str, Any]:
    from primeguard.venues.evm.artifacts import contract_artifact

    return contract_artifact(name)


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    art = _artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    if receipt["status"] != 1:
        raise SandboxError(f"deploying {name} reverted")
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def _place(w3: Web3, name: str, address: str, runtime: str) -> Contract:
    """Put ``name``'s runtime code at ``address`` (canonical mainnet address) and bind it."""
    w3.provider.make_request("anvil_setCode", [address, runtime])  # type: ignore[arg-type]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=_artifact(name)["abi"])


def feed_address(asset: str, chain: ChainScenario, w3: Web3, deployer: str) -> tuple[Contract, bool]:
    """Canonical feed address on a mainnet-id chain; a fresh deployment elsewhere."""
    if chain.chain_id == 1 and asset in MAINNET_FEEDS:
        art = _artifact("SandboxAggregator")
        return _place(w3, "SandboxAggregator", MAINNET_FEEDS[asset], art["deployedBytecode"]), True
    return _deploy(w3, "SandboxAggregator", deployer), False


def set_feed_round(agg: Contract, answer: Decimal, decimals: int, sender: str, *, age_s: int = 0,
                   incomplete: bool = False, now: int | None = None) -> None:
    """Write a new round: ``answer`` in USD, updated ``age_s`` ago, optionally incomplete."""
    scaled = int(answer.scaleb(decimals).to_integral_value())
    latest = agg.functions.latestRoundData().call()
    round_id = int(latest[0]) + 1
    ts = (now or int(agg.w3.eth.get_block("latest")["timestamp"])) - age_s
    answered = round_id - 1 if incomplete else round_id
    send_tx(agg.functions.setRoundData(round_id, scaled, ts, ts, answered), sender)


def build_chain(node: AnvilNode, chain: ChainScenario, scenario: Scenario) -> DeployedChain:
    """Deploy tokens, feeds and the reader on ``node`` and fund the scenario's wallets."""
    w3 = _w3(node)
    deployer = w3.eth.accounts[0]
    reader = _deploy(w3, "BatchReader", deployer)
    out = DeployedChain(chain=chain, node=node, deployer=deployer, batch_reader=reader.address)

    token_art = _artifact("SandboxToken")
    token_contracts: dict[str, Contract] = {}
    for symbol in chain.tokens:
        addr, decimals, asset = MAINNET_TOKENS[symbol]
        if chain.chain_id == 1:
            tok = _place(w3, "SandboxToken", addr, token_art["deployedBytecode"])
        else:
            tok = _deploy(w3, "SandboxToken", deployer)
        send_tx(tok.functions.initialize(f"Sandbox {symbol}", symbol, decimals, deployer), deployer)
        token_contracts[symbol] = tok
        out.tokens[symbol] = (tok.address, decimals, asset)

    now = int(w3.eth.get_block("latest")["timestamp"])
    for feed in (f for f in scenario.feeds if f.chain == chain.id):
        agg, _ = feed_address(feed.asset, chain, w3, deployer)
        send_tx(agg.functions.initialize(feed.decimals, f"{feed.asset} / USD", deployer), deployer)
        set_feed_round(agg, feed.answer, feed.decimals, deployer, age_s=feed.age_s,
                       incomplete=feed.incomplete, now=now)
        out.feeds[feed.asset] = (agg.address, feed.decimals, feed.heartbeat_s)

    out.sanctions_oracle = deploy_sanctions_oracle(w3, chain, deployer, scenario.sanctioned)

    index = CLIENT_KEY_OFFSET
    safe_infra: SafeDeployment | None = None
    for client in scenario.clients:
        for n, wallet in enumerate(client.wallets):
            if wallet.chain != chain.id:
                index += 1
                continue
            if wallet.kind == "safe":
                spec = wallet.safe or SafeScenario()
                if safe_infra is None:
                    safe_infra = deploy_safe_infra(w3, deployer)
                    out.safe_infra = safe_infra
                owners = list(spec.owners) or [derived_account(index * 100 + k)[0] for k in range(spec.owner_count)]
                address = create_safe(w3, safe_infra, spec, owners, salt=index, sender=deployer)
            elif wallet.custody_key:
                address = derived_account(TREASURY_KEY_INDEX)[0]
            else:
                address = wallet.address or derived_account(index)[0]
            index += 1
            if wallet.native:
                wei = parse_base_units(wallet.native, 18, what="native balance", allow_zero=True)
                w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
            for symbol, qty in wallet.tokens.items():
                units = parse_base_units(qty, MAINNET_TOKENS[symbol][1], what=f"{symbol} balance", allow_zero=True)
                if units:
                    send_tx(token_contracts[symbol].functions.mint(address, units), deployer)
            _apply_approvals(w3, wallet.approvals, token_contracts, address)
            out.wallets.append({"client": client.id, "address": address, "kind": wallet.kind,
                                "label": wallet.label or f"{client.id} wallet {n + 1}", "index": index - 1})
    for client in scenario.clients:
        if client.vault is not None and client.vault.chain == chain.id:
            out.vaults.append(deploy_vault(w3, client.id, client.vault, out.tokens, deployer, w3.eth.accounts[1]))
    return out


# The sanctions oracle's published address on Ethereum mainnet (same interface as the stand-in).
MAINNET_SANCTIONS_ORACLE = "0x40C57923924B5c5c5455c48D93317139ADDaC8fb"


def deploy_sanctions_oracle(w3: Web3, chain: ChainScenario, deployer: str, sanctioned: Any) -> str:
    """A SandboxSanctionsList (at the mainnet oracle's address on chain id 1) listing ``sanctioned``."""
    if chain.chain_id == 1:
        art = _artifact("SandboxSanctionsList")
        oracle = _place(w3, "SandboxSanctionsList", MAINNET_SANCTIONS_ORACLE, art["deployedBytecode"])
    else:
        oracle = _deploy(w3, "SandboxSanctionsList", deployer)
    send_tx(oracle.functions.initialize(deployer), deployer)
    if sanctioned:
        send_tx(oracle.functions.addToSanctionsList([Web3.to_checksum_address(a) for a in sanctioned]), deployer)
    return str(oracle.address)


def _apply_approvals(w3: Web3, approvals: Any, tokens: dict[str, Contract], owner: str) -> None:
    if not approvals:
        return
    with impersonated(w3, owner):
        for ap in approvals:
            tok = tokens[ap.token]
            amount = UINT256_MAX if ap.amount == "unlimited" else parse_base_units(
                ap.amount, MAINNET_TOKENS[ap.token][1], what="approval", allow_zero=True)
            send_tx(tok.functions.approve(ap.spender, amount), owner)


def wait_mined(w3: Web3, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.get_block("pending")["transactions"] and time.monotonic() < deadline:
        time.sleep(0.05)


__all__ = ["DeployedChain", "FeedScenario", "build_chain", "derived_account", "send_tx", "set_feed_round"]
