"""Execute withdrawals through a CollateralVault: build, sign, broadcast, confirm.

Crash safety rests on the nonce: a withdrawal reserves a nonce and records the signed hash before
broadcast. After a crash, the same nonce is reused (re-signed if needed), so at most one
transaction for that withdrawal can ever be mined: no double send, whatever failed when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from primeguard.custody.signer import KeystoreSigner, SignedTx
from primeguard.domain.errors import ChainError, ChainIdMismatch, CustodyError
from primeguard.venues.evm.artifacts import contract_artifact

NATIVE = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class TxOutcome:
    """What became of a sent transaction: ``confirmed``, ``failed`` (reverted) or ``pending``, with its block."""

    tx_hash: str
    status: str  # "confirmed" | "failed" | "pending"
    block: int | None = None
    error: str | None = None


def fee_fields(w3: Web3, tip_wei: int = 10**9) -> dict[str, int]:
    """EIP-1559 fees: twice the latest base fee plus the tip, so a block or two of rising base fee
    does not strand a custody transaction."""
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    return {"maxPriorityFeePerGas": tip_wei, "maxFeePerGas": 2 * base + tip_wei}


def vault_abi() -> list[dict[str, Any]]:
    """The CollateralVault ABI from the shipped Foundry artifact."""
    abi: list[dict[str, Any]] = contract_artifact("CollateralVault")["abi"]
    return abi


class VaultExecutor:
    """Talks to one vault on one chain with one signer (treasury or guardian).

    ``chain_id`` is the config's: every transaction is signed for it (never for whatever the node
    says), and nothing is signed or sent while the node reports another chain
    (:class:`ChainIdMismatch`; checked before each signature and again right before each send).
    """

    def __init__(self, rpc_url: str, vault: str, signer: KeystoreSigner, *, chain_id: int, gas_limit: int = 250_000,
                 timeout_s: float = 10) -> None:
        self.chain_id = chain_id
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self.vault = self.w3.eth.contract(address=Web3.to_checksum_address(vault), abi=vault_abi())
        self.signer = signer
        self.gas_limit = gas_limit

    # reads ------------------------------------------------------------------------------------

    def is_allowed(self, asset: str, destination: str) -> bool:
        """Whether the vault's allowlist has ``destination`` active for ``asset`` now (one eth_call)."""
        return bool(self.vault.functions.isAllowed(asset, destination).call())

    def remaining(self, asset: str) -> int:
        """What ``asset`` may still leave the vault in the current window, in base units (one eth_call)."""
        return int(self.vault.functions.remainingInWindow(asset).call())

    def paused(self) -> bool:
        """Whether the vault is paused (one eth_call)."""
        return bool(self.vault.functions.paused().call())

    def next_nonce(self) -> int:
        """The signer's next nonce, pending transactions included."""
        return int(self.w3.eth.get_transaction_count(self.signer.address, "pending"))

    def check_chain(self) -> None:
        """Raise :class:`ChainIdMismatch` unless the node answers ``eth_chainId`` with the configured id."""
        try:
            answer = self.w3.provider.make_request("eth_chainId", [])  # type: ignore[arg-type]
            actual: int | None = int(answer["result"], 16)
        except (KeyError, TypeError, ValueError):
            actual = None
        except Exception as exc:  # transport failure: nothing can be checked, so nothing is sent
            raise ChainError(f"eth_chainId failed: {type(exc).__name__}", venue="evm") from None
        if actual != self.chain_id:
            got = "no chain id" if actual is None else f"chain id {actual}"
            raise ChainIdMismatch(f"custody refuses: the node answers {got}, the config says chain id "
                                  f"{self.chain_id}; nothing signed or sent", venue="evm",
                                  expected=self.chain_id, actual=actual)

    # writes -----------------------------------------------------------------------------------

    def _tx(self, fn: Any, nonce: int) -> dict[str, Any]:
        self.check_chain()
        return fn.build_transaction({
            "from": self.signer.address, "nonce": nonce, "gas": self.gas_limit, "chainId": self.chain_id,
            **fee_fields(self.w3),
        })

    def sign_withdraw(self, asset: str, destination: str, amount: int, ref: bytes, nonce: int) -> SignedTx:
        """Sign (never send) ``withdraw(asset, destination, amount, ref)``; ``amount`` in base units. Raises
        :class:`ChainIdMismatch` (nothing signed) when the node reports another chain."""
        fn = self.vault.functions.withdraw(Web3.to_checksum_address(asset), Web3.to_checksum_address(destination),
                                           amount, ref)
        return self.signer.sign(self._tx(fn, nonce))

    def sign_pause(self, nonce: int) -> SignedTx:
        """Sign (never send) ``pause()``. Raises :class:`ChainIdMismatch` (nothing signed) when the node reports
        another chain."""
        return self.signer.sign(self._tx(self.vault.functions.pause(), nonce))

    def broadcast(self, signed: SignedTx) -> str:
        """Send a signed transaction. "Already known" counts as sent (it is the same transaction).

        Raises:
            ChainIdMismatch: the node reports another chain than the configured one (nothing sent).
        """
        self.check_chain()
        try:
            return "0x" + bytes(self.w3.eth.send_raw_transaction(signed.raw)).hex()
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return signed.tx_hash
            if "nonce too low" in text:
                # Something with this nonce was mined already: the caller checks which.
                raise CustodyError(f"nonce {signed.nonce} already used") from None
            raise ChainError(f"broadcast rejected: {exc.rpc_response.get('error', {}).get('message', 'error')}"
                             if hasattr(exc, "rpc_response") and exc.rpc_response else "broadcast rejected") from None

    def outcome(self, tx_hash: str) -> TxOutcome:
        """The transaction's receipt as a :class:`TxOutcome`; ``pending`` while there is none. Reads only."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return TxOutcome(tx_hash, "pending")
        if receipt["status"] == 1:
            return TxOutcome(tx_hash, "confirmed", int(receipt["blockNumber"]))
        return TxOutcome(tx_hash, "failed", int(receipt["blockNumber"]), "reverted on chain")

    def wait(self, tx_hash: str, timeout_s: float = 60) -> TxOutcome:
        """Poll :meth:`outcome` until it is not pending or ``timeout_s`` seconds passed; returns the last outcome
        (``pending`` on timeout), never raises for a timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.outcome(tx_hash)
            if out.status != "pending" or time.monotonic() > deadline:
                return out
            time.sleep(0.1)

    def tx_exists(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (mempool or mined). Reads only."""
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True
