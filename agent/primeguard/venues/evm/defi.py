"""Read DeFi positions declared in the config through the protocols' own views, batched.

Each position becomes a :class:`~primeguard.risk.defi.DefiPosition` of legs in whole units of
priced assets; :func:`primeguard.risk.defi.value_positions` values them. A view that fails (revert,
no code, malformed answer, an underlying that is not a listed token) makes that position
*unreadable*, never zero: the client is then blind.

- ERC-4626: ``asset()``, ``balanceOf(wallet)``, then ``convertToAssets(shares)`` — the vault's own
  rounding, in the underlying's base units.
- Aave v3: ``getReservesList()``, ``getReserveData(reserve)`` (aToken, variable debt token),
  their ``balanceOf(wallet)`` (scaled balance × index, as Aave reports it) and
  ``getUserAccountData(wallet)`` for the health factor (1e18 = 1).
- wstETH: ``getStETHByWstETH(balanceOf(wallet))``, priced as the position's ``asset`` (ETH).
"""

from __future__ import annotations

from decimal import Decimal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from primeguard.config.schema import DefiPositionConfig, PrimeguardConfig, TokenConfig
from primeguard.domain.errors import VenueError
from primeguard.risk.defi import DefiLeg, DefiPosition
from primeguard.venues.evm.reader import ChainReader

WAD = Decimal(10) ** 18


def _sel(sig: str) -> bytes:
    return keccak(text=sig)[:4]


def _addr_arg(a: str) -> bytes:
    return abi_encode(["address"], [a])


def _uint(raw: bytes | None) -> int:
    if raw is None or len(raw) < 32:
        raise ValueError("no answer")
    return int.from_bytes(raw[:32], "big")


def _address(raw: bytes | None) -> str:
    v = _uint(raw)
    if v >= 2**160:
        raise ValueError("not an address")
    return "0x" + raw[12:32].hex()  # type: ignore[index]


class _Unreadable(Exception):
    pass


async def _one(reader: ChainReader, pos: DefiPositionConfig, wallet: str,
               tokens: dict[str, TokenConfig]) -> tuple[tuple[DefiLeg, ...], Decimal | None]:
    cs = reader.w3.to_checksum_address

    def listed(addr: str) -> TokenConfig:
        t = tokens.get(str(cs(addr)))
        if t is None:
            raise _Unreadable(f"underlying {cs(addr)} is not a listed token: no price")
        return t

    def whole(amount: int, decimals: int) -> Decimal:
        return Decimal(amount) / (Decimal(10) ** decimals)

    if pos.protocol == "erc4626":
        asset_raw, shares_raw = await reader.multicall([(pos.address, _sel("asset()")),
                                                        (pos.address, _sel("balanceOf(address)") + _addr_arg(wallet))])
        underlying = listed(_address(asset_raw))
        shares = _uint(shares_raw)
        (assets_raw,) = await reader.multicall(
            [(pos.address, _sel("convertToAssets(uint256)") + abi_encode(["uint256"], [shares]))])
        return (DefiLeg(underlying.asset, whole(_uint(assets_raw), underlying.decimals)),), None
    if pos.protocol == "wsteth":
        (bal_raw,) = await reader.multicall([(pos.address, _sel("balanceOf(address)") + _addr_arg(wallet))])
        (steth_raw,) = await reader.multicall(
            [(pos.address, _sel("getStETHByWstETH(uint256)") + abi_encode(["uint256"], [_uint(bal_raw)]))])
        return (DefiLeg(pos.asset or "ETH", whole(_uint(steth_raw), 18)),), None
    # aave_v3
    account_call = (pos.address, _sel("getUserAccountData(address)") + _addr_arg(wallet))
    list_raw, acct_raw = await reader.multicall([(pos.address, _sel("getReservesList()")), account_call])
    if list_raw is None or acct_raw is None or len(acct_raw) < 192:
        raise _Unreadable("getReservesList / getUserAccountData failed")
    (reserves,) = abi_decode(["address[]"], list_raw)
    hf_raw = int.from_bytes(acct_raw[160:192], "big")
    datas = await reader.multicall([(pos.address, _sel("getReserveData(address)") + _addr_arg(r)) for r in reserves])
    token_of: list[tuple[str, str, bool]] = []  # (reserve, token, borrowed)
    for r, d in zip(reserves, datas, strict=True):
        if d is None or len(d) < 11 * 32:
            raise _Unreadable(f"getReserveData({r}) failed")
        token_of.append((r, "0x" + d[8 * 32 + 12:9 * 32].hex(), False))
        token_of.append((r, "0x" + d[10 * 32 + 12:11 * 32].hex(), True))
    bals = await reader.multicall([(str(cs(t)), _sel("balanceOf(address)") + _addr_arg(wallet))
                                   for _r, t, _b in token_of])
    legs: list[DefiLeg] = []
    for (r, _t, borrowed), raw in zip(token_of, bals, strict=True):
        amount = _uint(raw)
        if amount == 0:
            continue
        underlying = listed(r)
        legs.append(DefiLeg(underlying.asset, whole(amount, underlying.decimals), borrowed))
    # Aave reports type(uint256).max when there is no debt: "no health factor to watch".
    return tuple(legs), (None if hf_raw == 2**256 - 1 else Decimal(hf_raw) / WAD)


async def read_positions(cfg: PrimeguardConfig, reader: ChainReader, chain: str) -> list[DefiPosition]:
    """Every declared position of wallets on ``chain``. A failed read gives ``readable=False``."""
    wallets = {w.id: w for w in cfg.wallets if w.chain == chain}
    tokens = {t.address: t for t in cfg.tokens_on(chain)}
    out: list[DefiPosition] = []
    for pos in cfg.defi_positions:
        w = wallets.get(pos.wallet)
        if w is None:
            continue
        try:
            legs, health = await _one(reader, pos, w.address, tokens)
        except (_Unreadable, ValueError, VenueError, IndexError) as exc:
            out.append(DefiPosition(pos.id, w.client, pos.protocol, pos.klass, readable=False,
                                    error=str(exc)[:200] or type(exc).__name__))
            continue
        out.append(DefiPosition(pos.id, w.client, pos.protocol, pos.klass, legs, health))
    return out
