"""The reader's call data, encoded by eth-abi without web3's normalizers (the capability scan's
hot spot), is byte for byte what web3 encodes, for every BatchReader function and ERC-20 reads,
for every argument shape the reader passes."""

from __future__ import annotations

from web3 import AsyncWeb3

from primeguard.sandbox.chain import derived_account
from primeguard.venues.evm.reader import ERC20_ABI, PlainCall, batch_function_abi, batch_reader_abi, calldata

READER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_calldata_equals_web3_encoding() -> None:
    w3 = AsyncWeb3()
    r = w3.eth.contract(address=READER, abi=batch_reader_abi())
    token = w3.eth.contract(address=READER, abi=ERC20_ABI)
    wallets = [derived_account(i)[0] for i in range(7)]
    others = [derived_account(100 + i)[0] for i in range(7)]
    fns = [
        r.functions.allowances(wallets, others, wallets),
        r.functions.calls(wallets[:3], [b"\x01\x02", b"", b"x" * 68]),
        r.functions.codeSizes(others),
        r.functions.latestRounds(wallets),
        r.functions.nativeBalances(wallets),
        r.functions.tokenBalances(wallets, others[:2]),
        r.functions.allowances([], [], []),
        token.functions.allowance(wallets[0], others[1]),
        token.functions.balanceOf(wallets[2]),
    ]
    assert {f["name"] for f in batch_reader_abi() if f.get("type") == "function"} <= {f.fn_name for f in fns}
    for fn in fns:
        assert calldata(fn) == bytes.fromhex(fn._encode_transaction_data().removeprefix("0x")), fn.fn_name


def test_plain_call_encodes_as_the_bound_function() -> None:
    """The reader binds ``BatchReader.calls`` without web3's per-argument validation (PlainCall):
    same call data as web3's bound function."""
    w3 = AsyncWeb3()
    r = w3.eth.contract(address=READER, abi=batch_reader_abi())
    targets = [derived_account(i)[0] for i in range(5)]
    data = [b"", b"\x01", b"y" * 32, b"z" * 68, b"w" * 100]
    plain = PlainCall(READER, batch_function_abi("calls"), (targets, data))
    assert calldata(plain) == bytes.fromhex(r.functions.calls(targets, data)._encode_transaction_data()[2:])
