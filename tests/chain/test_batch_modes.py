"""Batched reads without a deployed contract, on a real anvil: every batching mode reads what one
call per read reads; a failed sub-call is a missing value (a blind finding upstream), never a zero;
the mode is detected from what the node does, through a real JSON-RPC proxy that refuses or drops
the ``eth_call`` state override."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from primeguard.domain.errors import ChainError
from primeguard.domain.findings import FindingCode
from primeguard.sandbox.toolchain import built_artifact
from primeguard.sandbox.world import Sandbox
from primeguard.venues.evm import batch
from primeguard.venues.evm.collect import collect_evm
from primeguard.venues.evm.reader import ERC20_ABI, ChainReader, calldata
from tests.clitools import run_cli
from tests.conftest import scenario_from
from tests.json_schemas import check

pytestmark = pytest.mark.chain

SPENDER = "0x000000000000000000000000000000000000bEEF"
REVERTING = "0x00000000000000000000000000000000DeaDBeef"  # code: PUSH1 0 PUSH1 0 REVERT
NO_CODE = "0x000000000000000000000000000000000000dEaD"
WORLD = {
    "name": "batchmodes",
    "feeds": [{"asset": "ETH", "answer": "3000", "heartbeat_s": 3600},
              {"asset": "USDC", "answer": "1.0001", "heartbeat_s": 86400}],
    "clients": [
        {"id": "firm-a", "wallets": [
            {"native": "1.5", "tokens": {"USDC": "1234.567891", "WETH": "2.000000000000000001"},
             "approvals": [{"token": "USDC", "spender": SPENDER, "amount": "77"}]},
            {"tokens": {"USDT": "10"}},
        ]},
        {"id": "firm-b", "wallets": [{"native": "0"}]},
    ],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox(scenario_from(WORLD), tmp_path_factory.mktemp("batchmodes") / "world")
    sb.start()
    try:
        sb.chains["ethereum"].node.rpc("anvil_setCode", [REVERTING, "0x60006000fd"])
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def node(world: Sandbox) -> Iterator[Any]:
    """The world's node with no code at the Multicall3 address and no cached mode, before and after."""
    n = world.chains["ethereum"].node
    batch.clear_choices()
    n.rpc("anvil_setCode", [batch.MULTICALL3_ADDRESS, "0x"])
    yield n
    n.rpc("anvil_setCode", [batch.MULTICALL3_ADDRESS, "0x"])
    batch.clear_choices()


def put_multicall3(node: Any, code: str | None = None) -> None:
    """A contract with Multicall3's interface (our Aggregate3Reader) at the canonical address."""
    code = code or built_artifact("Aggregate3Reader")["deployedBytecode"]
    node.rpc("anvil_setCode", [batch.MULTICALL3_ADDRESS, code])


class OverrideProxy:
    """A JSON-RPC proxy over a real socket in front of anvil. ``mode``: ``pass`` forwards as is;
    ``reject`` answers an error to any eth_call with a state override (a node without the
    feature); ``drop`` removes the override and forwards (a node that ignores it); ``nobatch``
    answers an error to every JSON-RPC batch (a provider that disables them)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                out = proxy.handle(body)
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, body: Any) -> Any:
        if isinstance(body, list):
            if self.mode == "nobatch":
                return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch requests disabled"}}
            return [self.handle(b) for b in body]
        params = body.get("params") or []
        if body.get("method") == "eth_call" and len(params) >= 3:
            if self.mode == "reject":
                return {"jsonrpc": "2.0", "id": body.get("id"),
                        "error": {"code": -32602, "message": "too many arguments, want at most 2"}}
            if self.mode == "drop":
                body = {**body, "params": params[:2]}
        req = urllib.request.Request(self.upstream, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(node: Any) -> Iterator[OverrideProxy]:
    p = OverrideProxy(node.rpc_url)
    yield p
    p.close()


def reads(world: Sandbox) -> tuple[list[str], list[str], list[str], list[tuple[str, str, str]]]:
    cfg = world.config()
    wallets = [w.address for w in cfg.wallets]
    tokens = [t.address for t in cfg.tokens]
    feeds = [f.address for f in cfg.feeds]
    triples = [(t, w, SPENDER) for t in tokens for w in wallets]
    return wallets, tokens, feeds, triples


def read_all(url: str, world: Sandbox, mode: str | None, *, bad: bool = False) -> tuple[Any, ...]:
    """Every batched read kind through one reader: balances, allowances, oracle rounds, raw calls
    (token decimals) and code sizes; with ``bad`` a reverting token, a feed without code and a
    reverting raw call are added (the per-call path raises for a bad balance, so not there)."""
    wallets, tokens, feeds, triples = reads(world)
    deployed = world.chains["ethereum"].batch_reader

    async def run() -> tuple[Any, ...]:
        kind = {"deployed": ("deployed", deployed)}.get(mode or "", (mode, None))
        async with ChainReader("ethereum", url, batch_reader=kind[1], batch_mode=kind[0],  # type: ignore[arg-type]
                               expected_chain_id=1) as r:
            toks = [*tokens, REVERTING] if bad else tokens
            extra_feeds = [NO_CODE, REVERTING] if bad else []
            extra_triples = [(REVERTING, wallets[0], SPENDER), (NO_CODE, wallets[0], SPENDER)] if bad else []
            w3 = r.w3
            dec = [(t, calldata(w3.eth.contract(address=t, abi=ERC20_ABI).functions.decimals()))
                   for t in (toks if not bad else [*toks, NO_CODE])]
            b = await r.balances(wallets, toks)
            a = await r.allowances(triples + extra_triples)
            rounds = await r.rounds(feeds + extra_feeds)
            raw = await r.multicall(dec)
            sizes = await r.code_sizes([*wallets, *tokens])
            return b, a, rounds, raw, sizes, (await r.batch_choice()).mode

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["deployed", "multicall3", "state_override"])
def test_every_mode_reads_what_one_call_per_read_reads(world, node, mode):
    if mode == "multicall3":
        put_multicall3(node)
    b, a, rounds, raw, sizes, used = read_all(node.rpc_url, world, mode)
    pb, pa, prounds, praw, psizes, pused = read_all(node.rpc_url, world, "per_call")
    assert (used, pused) == (mode, "per_call")
    assert b.values == pb.values and not b.failed
    assert any(v > 0 for (_w, t), v in b.values.items() if t is not None)  # real balances, not all zero
    assert a == pa and 77 * 10**6 in a.values()  # the scenario's approval is read
    assert rounds == prounds and all(r.ok for r in rounds)
    assert raw == praw and all(x is not None for x in raw)
    assert sizes == psizes and any(sizes.values())


@pytest.mark.parametrize("mode", ["deployed", "multicall3", "state_override"])
def test_a_failed_sub_call_is_a_missing_value_never_zero(world, node, mode):
    if mode == "multicall3":
        put_multicall3(node)
    wallets, tokens, feeds, _ = reads(world)
    b, a, rounds, raw, _sizes, used = read_all(node.rpc_url, world, mode, bad=True)
    assert used == mode
    assert {(w, REVERTING) for w in wallets}.issubset(b.failed)
    assert not any(t == REVERTING for (_w, t) in b.values)
    assert a[(REVERTING, wallets[0], SPENDER)] is None and a[(NO_CODE, wallets[0], SPENDER)] is None
    assert [r.ok for r in rounds] == [True] * len(feeds) + [False, False]
    assert raw[-2:] == [None, None] and all(x is not None for x in raw[:-2])
    # The good reads around the bad ones are all there.
    assert all((w, t) in b.values for w in wallets for t in [None, *tokens])


@pytest.mark.parametrize("mode", ["multicall3", "state_override"])
def test_a_reverting_token_makes_its_wallets_blind_upstream(world, node, mode):
    if mode == "multicall3":
        put_multicall3(node)
    cfg = world.config()
    usdc = next(t for t in cfg.tokens if t.symbol == "USDC")
    broken = usdc.model_copy(update={"symbol": "BRK", "address": REVERTING})
    chain = cfg.chains[0].model_copy(update={"batch_reader": None, "batch_mode": mode})
    got = asyncio.run(collect_evm(cfg.model_copy(update={"chains": (chain,), "tokens": (*cfg.tokens, broken)})))
    assert got.round_trips > 0
    for snap in got.snapshots:
        assert not snap.ok
        assert FindingCode.VENUE_BAD_RESPONSE in {f.code for f in snap.findings}
        assert all(not b.source.endswith(":BRK") for b in snap.balances)  # no zero balance invented
    assert batch.chosen_modes()["ethereum"].mode == mode


def test_auto_picks_multicall3_when_it_is_there_else_state_override(world, node):
    async def choice(url: str) -> batch.BatchChoice:
        async with ChainReader("ethereum", url, batch_reader=None, batch_mode="auto") as r:
            return await r.batch_choice()

    first = asyncio.run(choice(node.rpc_url))
    assert first.mode == "state_override" and first.address == batch.OVERRIDE_ADDRESS
    put_multicall3(node)
    assert asyncio.run(choice(node.rpc_url)) == first  # detected once per process and chain
    batch.clear_choices()
    second = asyncio.run(choice(node.rpc_url))
    assert (second.mode, second.address) == ("multicall3", batch.MULTICALL3_ADDRESS)
    # Code there that does not answer as Multicall3 does is not used.
    put_multicall3(node, "0x60006000fd")
    batch.clear_choices()
    third = asyncio.run(choice(node.rpc_url))
    assert third.mode == "state_override" and "multicall3: probe aggregate3" in third.reason
    # A configured BatchReader wins in auto mode, without a probe.
    async def deployed() -> batch.BatchChoice:
        async with ChainReader("ethereum", node.rpc_url, batch_reader=world.chains["ethereum"].batch_reader,
                               batch_mode="auto") as r:
            return await r.batch_choice()

    assert asyncio.run(deployed()).mode == "deployed"


@pytest.mark.parametrize(("proxy_mode", "why"), [("reject", "refused"), ("drop", "ignored")])
def test_auto_falls_back_to_per_call_when_the_node_does_not_apply_overrides(world, proxy, proxy_mode, why):
    proxy.mode = proxy_mode
    b, a, rounds, raw, sizes, used = read_all(proxy.url, world, "auto")
    assert used == "per_call"
    choice = batch.chosen_modes()["ethereum"]
    assert why in choice.reason and "no code at the canonical address" in choice.reason
    proxy.mode = "pass"
    batch.clear_choices()
    assert read_all(proxy.url, world, "per_call")[:5] == (b, a, rounds, raw, sizes)


def test_forced_mode_that_fails_its_probe_is_not_used(world, proxy):
    proxy.mode = "reject"

    async def choice(mode: str) -> batch.BatchChoice:
        async with ChainReader("ethereum", proxy.url, batch_reader=None, batch_mode=mode) as r:  # type: ignore[arg-type]
            return await r.batch_choice()

    forced = asyncio.run(choice("state_override"))
    assert (forced.mode, forced.requested) == ("per_call", "state_override")
    assert asyncio.run(choice("multicall3")).mode == "per_call"


def test_an_override_refused_later_is_detected_again(world, proxy):
    """The node stops applying overrides after detection: the batched read fails (the chain is
    blind for that read, never zeros) and the next reader detects per_call."""
    wallets, tokens, _, _ = reads(world)

    async def run() -> tuple[str, BaseException | None, str]:
        async with ChainReader("ethereum", proxy.url, batch_reader=None, batch_mode="auto") as r:
            first = (await r.batch_choice()).mode
            proxy.mode = "reject"
            err: BaseException | None = None
            try:
                await r.balances(wallets, tokens)
            except ChainError as exc:
                err = exc
        async with ChainReader("ethereum", proxy.url, batch_reader=None, batch_mode="auto") as r2:
            return first, err, (await r2.batch_choice()).mode

    first, err, then = asyncio.run(run())
    assert first == "state_override"
    assert isinstance(err, ChainError)
    assert then == "per_call"


def test_cli_chains_shows_the_mode_and_why(world, node, tmp_path):
    data = world.config_dict()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = run_cli("chains", "--config", str(path), "--json", cwd=world.workdir)
    assert out.returncode == 0, out.stderr
    check("chains", json.loads(out.stdout))
    [row] = json.loads(out.stdout)["chains"]
    assert (row["chain"], row["requested"], row["mode"]) == ("ethereum", "auto", "deployed")
    for c in data["chains"]:
        del c["batch_reader"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = run_cli("chains", "--config", str(path), cwd=world.workdir)
    assert out.returncode == 0, out.stderr
    assert "state_override" in out.stdout and "no code at the canonical" in out.stdout
    put_multicall3(node)
    [row] = json.loads(run_cli("chains", "--config", str(path), "--json", cwd=world.workdir).stdout)["chains"]
    assert (row["mode"], row["address"]) == ("multicall3", batch.MULTICALL3_ADDRESS)


@pytest.mark.parametrize("proxy_mode", ["pass", "nobatch"])
def test_code_sizes_with_multicall3_come_in_one_batch_or_one_by_one(world, proxy, proxy_mode):
    """Multicall3 has no code-size read: a JSON-RPC batch of eth_getCode, or one request each
    where the node refuses batches; the same sizes either way."""
    put_multicall3(world.chains["ethereum"].node)
    wallets, tokens, _, _ = reads(world)
    proxy.mode = proxy_mode

    async def run(mode: str) -> tuple[dict[str, int], int]:
        async with ChainReader("ethereum", proxy.url, batch_reader=None, batch_mode=mode) as r:  # type: ignore[arg-type]
            await r.batch_choice()
            before = r.round_trips
            sizes = await r.code_sizes([*wallets, *tokens])
            return sizes, r.round_trips - before

    sizes, trips = asyncio.run(run("multicall3"))
    assert batch.chosen_modes()["ethereum"].mode == "multicall3"
    expected, _ = asyncio.run(run("per_call"))
    assert sizes == expected and sorted(set(sizes.values()))[0] == 0 and max(sizes.values()) > 0
    assert trips == (1 if proxy_mode == "pass" else 1 + len(wallets) + len(tokens))
