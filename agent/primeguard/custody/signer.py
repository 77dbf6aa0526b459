"""Sign transactions with an eth-account encrypted keystore.

The password comes from the environment, a file the operator controls, or a prompt; it is used
once to decrypt and never stored. The decrypted key lives only inside the ``LocalAccount``; this
object's repr, errors and logs never show it.
"""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount

from primeguard.config.loader import resolve_secret
from primeguard.config.schema import SecretRef
from primeguard.domain.errors import ConfigError, SignerError


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction: raw bytes, its 0x-hash and the nonce it was signed with."""

    raw: bytes
    tx_hash: str
    nonce: int


class KeystoreSigner:
    """A signer backed by an encrypted keystore file."""

    def __init__(self, keystore: Path, password: str) -> None:
        try:
            blob = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise SignerError(f"cannot read keystore {keystore.name}: {type(exc).__name__}") from None
        try:
            key = EthAccount.decrypt(blob, password)
        except ValueError:
            raise SignerError(f"keystore {keystore.name}: wrong password or corrupt file") from None
        self._account: LocalAccount = EthAccount.from_key(key)
        self.address: str = self._account.address
        self.keystore_name = keystore.name

    @classmethod
    def open(cls, keystore: str | Path, password: SecretRef | None, *, base_dir: Path | None = None) -> KeystoreSigner:
        """Open ``keystore`` (relative to ``base_dir``) with the password from ``password``, or from a terminal
        prompt when none is configured. Raises :class:`SignerError` (never with the password or key in
        the message) when the password is unavailable, wrong, or the file unreadable."""
        path = Path(keystore)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if password is not None:
            try:
                secret = resolve_secret(password, base_dir=base_dir)
            except ConfigError as exc:
                raise SignerError(f"keystore password unavailable: {exc}") from None
        elif sys.stdin.isatty():
            secret = getpass.getpass(f"password for {path.name}: ")
        else:
            raise SignerError("no keystore password configured and no terminal to prompt on")
        return cls(path, secret)

    def sign(self, tx: dict[str, Any]) -> SignedTx:
        """Sign ``tx`` (a complete EIP-1559 dict incl. nonce and chainId). Pure (no I/O, nothing sent). Raises
        :class:`SignerError` carrying only the error type, never the key."""
        try:
            signed = self._account.sign_transaction(tx)
        except Exception as exc:  # eth-account raises several types; none may carry the key
            raise SignerError(f"signing failed: {type(exc).__name__}") from None
        return SignedTx(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex(), int(tx["nonce"]))

    def sign_authorization(self, chain_id: int, delegate: str, nonce: int) -> Any:
        """An EIP-7702 authorization by this key (``delegate`` the zero address clears a delegation)."""
        try:
            return self._account.sign_authorization({"chainId": chain_id, "address": delegate, "nonce": nonce})
        except Exception as exc:  # never let the key show up in an exception
            raise SignerError(f"signing the authorization failed: {type(exc).__name__}") from None

    def __repr__(self) -> str:
        return f"KeystoreSigner(address={self.address}, keystore={self.keystore_name})"
