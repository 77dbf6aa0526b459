"""The client is told: at margin call the shipped plan's automatic ``margin_call`` lever posts the
notice (LTV now, bands, what to post or repay, the deadline) to the client's own webhook, a real
HTTP receiver; the delivery is recorded with the action and audited; a client acknowledgement
recorded through the CLI by a real store user is audited and does not stop the clock; the
webhook's token never reaches the store, the audit log, the CLI or the logs."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
import yaml

from primeguard.config import load_config
from primeguard.daemon.guardian import Guardian
from primeguard.risk.ladder import LadderState
from primeguard.store import audit, repos
from primeguard.store.db import open_store
from tests.clitools import make_users, run_cli
from tests.conftest import REPO
from tests.daemon.receiver import Receiver
from tests.json_schemas import check

pytestmark = pytest.mark.chain

# LTV 0.752: margin call in the new tier (0.70-0.80), cured under 0.68.
WORLD = {
    "name": "told",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "loan": {"principal": "75000"},
                 "wallets": [{"tokens": {"WETH": "18", "USDC": "50000"}}]}],
}
SECRET = "whsec-9f8e7d6c5b4a39281706"


def _config(sb, tmp_path, receiver: Receiver):
    data = yaml.safe_load(sb.config_path.read_text())
    data["store"] = {"url": f"sqlite:///{tmp_path / 'told.db'}"}
    for c in data["clients"]:
        if c["id"] == "firm-a":
            c["name"] = "Firm A Capital"
            c["contacts"] = {"webhook": {"value": f"{receiver.url}?token={SECRET}"}}
    path = sb.config_path.parent / "told.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_margin_call_notice_reaches_the_client_and_an_ack_does_not_stop_the_clock(sandbox_factory, tmp_path,
                                                                                   caplog):
    sb = sandbox_factory(WORLD)
    caplog.set_level(logging.DEBUG)

    async def scenario():
        receiver = Receiver()
        await receiver.start()
        try:
            path = _config(sb, tmp_path, receiver)
            g = Guardian(load_config(path), config_dir=path.parent)
            out = await g.sweep()
            _, body = await receiver.wait_for(lambda b: b.get("schema") == "primeguard.margin_call/1")
            return path, out, body, receiver.got, receiver.port
        finally:
            await receiver.stop()

    path, out, body, got, port = asyncio.run(scenario())
    status = out.evaluation.ladder["firm-a"]
    assert status.state == LadderState.MARGIN_CALL
    assert len([b for _, b in got if b.get("schema") == "primeguard.margin_call/1"]) == 1
    check("margin_call", body)
    assert body["client_id"] == "firm-a" and body["deadline"] == status.deadline.isoformat()
    assert body["bands"]["margin_call"] == "0.70" and body["cure_below"] == "0.68"
    ltv, loan = Decimal(body["ltv"]), Decimal("75000")
    collateral = loan / ltv
    assert loan / (collateral + Decimal(body["post_usd"])) <= Decimal("0.68")  # posting that much cures it
    assert (loan - Decimal(body["repay_usd"])) / collateral <= Decimal("0.68")  # so does repaying that much
    assert f"{ltv * 100:.2f} %" in body["text"] and "Deadline: " in body["text"]

    store = open_store(f"sqlite:///{tmp_path / 'told.db'}")
    with store.session(readonly=True) as s:
        (action,) = [a for a in repos.list_actions(s, client_id="firm-a") if a.kind == "margin_call"]
        assert (action.mode, action.state) == ("automatic", "done")
        (delivery,) = action.result["deliveries"]
        assert delivery["ok"] and delivery["route"] == "webhook" and delivery["to"] == f"http://127.0.0.1:{port}"
        done = [e for e in audit.entries(s, kind="action.done", subject=action.id)]
        assert done and done[0].payload["result"]["deliveries"][0]["ok"]

    # The client calls the desk; a treasury user records it. A viewer may not.
    tokens = make_users(path, REPO, {"tom": "treasury", "vic": "viewer"})
    refused = run_cli("actions", "ack", "firm-a", "--config", str(path), cwd=REPO, token=tokens["vic"])
    assert refused.returncode != 0 and "may not record ack" in refused.stdout + refused.stderr
    ack = run_cli("actions", "ack", "firm-a", "--config", str(path), "--note", "will post USDC", "--json",
                  cwd=REPO, token=tokens["tom"])
    assert ack.returncode == 0, ack.stdout + ack.stderr
    assert '"acknowledged_by": "tom"' in ack.stdout and status.deadline.isoformat() in ack.stdout
    with store.session(readonly=True) as s:
        acks = audit.entries(s, kind="ladder.acknowledged")
        assert [(e.actor, e.subject, e.payload["note"]) for e in acks] == [("tom", "firm-a", "will post USDC")]
        row = repos.get_ladder_state(s, "firm-a")
        assert row.ack_by == "tom" and row.deadline == status.deadline

    # The acknowledgement does not stop the clock: uncured at the deadline, the client is halted.
    g2 = Guardian(load_config(path), config_dir=path.parent)
    halted = asyncio.run(g2.sweep(now=status.deadline)).evaluation.ladder["firm-a"]
    assert halted.state == LadderState.HALT
    assert audit.verify(store).ok

    # The webhook's token is nowhere on our side: store file, CLI output, logs.
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("told.db*"))
    assert SECRET.encode() not in raw
    assert SECRET not in ack.stdout + ack.stderr + refused.stdout + refused.stderr
    # (the test receiver's own access log prints the URL it was called on: that is the client's side)
    ours = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    assert ours and not [m for m in ours if SECRET in m]

