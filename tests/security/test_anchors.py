"""External anchors: the daemon's scheduled job and CLI writes publish the chain head outside the
database; ``audit verify --anchor FILE`` then detects a truncated tail or a rewritten history that
the chain alone cannot (the attacker also moved the head), and passes an intact chain."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from primeguard.config.schema import AnchorsConfig, PrimeguardConfig
from primeguard.daemon.guardian import Guardian
from primeguard.domain.errors import InputError
from primeguard.store import Store, audit, open_store
from primeguard.store.anchors import SCHEMA, Publisher, read_anchors
from primeguard.store.audit import GENESIS_HASH, entry_hash
from primeguard.store.tables import AuditHeadRow, AuditRow
from tests.clitools import make_users, run_cli
from tests.security.book import write_book
from tests.store.util import at

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "primeguard.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _head(store: Store) -> tuple[int, str]:
    with store.session(readonly=True) as s:
        return audit.head(s)


def _anchor_file(store: Store, path: Path) -> dict:
    record, failures = Publisher(AnchorsConfig.model_validate({"sinks": [{"kind": "file", "path": str(path)}]})
                                 ).anchor(store, source="test")
    assert failures == []
    return record


def _rollback(store: Store, keep: int) -> None:
    with store.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = :k"), {"k": keep}).first()
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq > :k"), {"k": keep})
        conn.execute(sa.text("UPDATE audit_head SET seq = :k, hash = :h WHERE id = 1"),
                     {"k": keep, "h": row[0] if row else GENESIS_HASH})


def _rewrite(store: Store, seq: int, payload: dict) -> None:
    """Change entry ``seq``'s payload and re-hash it and every later entry, and the head: a chain
    rebuilt by someone with full write access. Verification without anchors cannot see it."""
    with store.session(readonly=True) as s:
        later = audit.entries(s, after_seq=seq - 1, limit=1_000_000)
    log, head = AuditRow.__table__, AuditHeadRow.__table__
    with store.session() as s:
        prev = later[0].prev_hash
        for e in later:
            body = payload if e.seq == seq else e.payload
            digest = entry_hash(e.seq, e.at, e.actor, e.kind, e.subject, body, prev)
            s.execute(sa.update(log).where(log.c.seq == e.seq).values(payload=body, prev_hash=prev, hash=digest))
            prev = digest
        s.execute(sa.update(head).where(head.c.id == 1).values(hash=prev))


# --- writing anchors -----------------------------------------------------------------------------------------


def test_daemon_job_writes_file_anchors(tmp_path: Path) -> None:
    db = tmp_path / "daemon.db"
    store = open_store(f"sqlite:///{db}", migrate=True)
    write_book(store)
    store.close()
    anchors = tmp_path / "anchors" / "head.jsonl"
    cfg = PrimeguardConfig.model_validate({
        "store": {"url": f"sqlite:///{db}"},
        "audit": {"anchors": {"every_s": 1, "sinks": [{"kind": "file", "path": "anchors/head.jsonl"},
                                                      {"kind": "log"}]}},
    })

    async def scenario() -> tuple[int, int]:
        g = Guardian(cfg, config_dir=tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(g.run(sweep_every_s=3600, scan_every_s=3600, stop=stop, watch=False))
        try:
            await _until(lambda: any((r["seq"], r["hash"]) == _head(g.store) for r in _lines(anchors)))
            first = _head(g.store)[0]
            with g.store.session() as s:  # the head moves: the scheduled job anchors the new head
                audit.append(s, actor="ops", kind="note", subject="later", payload={"n": 2})
            moved = _head(g.store)[0]
            await _until(lambda: any(r["seq"] >= moved for r in _lines(anchors)))
            return first, moved
        finally:
            stop.set()
            await task

    first, moved = asyncio.run(scenario())
    records = _lines(anchors)
    assert moved > first
    assert all(r["schema"] == SCHEMA and r["source"].startswith("daemon:") for r in records)
    last = next(r for r in records if r["seq"] == moved)
    store = open_store(f"sqlite:///{db}")
    try:
        assert last["hash"] == _head(store)[1] and last["entry_at"]
        r = audit.verify(store, anchors=read_anchors(anchors))
        assert r.ok and r.anchors_checked == len(records), r.problems
    finally:
        store.close()


async def _until(cond) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


def test_cli_write_publishes_an_anchor(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"url": "sqlite:///cli.db"},
                                   "audit": {"anchors": {"sinks": [{"kind": "file", "path": "anchors.jsonl"}]}}}))
    tokens = make_users(cfg, tmp_path, {"carol": "compliance"})  # bootstrap (seq 1) + add carol (seq 2)
    prop = run_cli("policy", "propose", "policies", "--config", str(cfg), "--json", cwd=tmp_path,
                   token=tokens["carol"])
    assert prop.returncode == 0, prop.stderr
    records = _lines(tmp_path / "anchors.jsonl")
    assert [r["seq"] for r in records] == [1, 2, 3] and {r["source"] for r in records} == {"cli"}
    refused = run_cli("users", "add", "eve", "--role", "overlord", "--config", str(cfg), cwd=tmp_path,
                      token=tokens["root"])
    assert refused.returncode == 2
    assert len(_lines(tmp_path / "anchors.jsonl")) == 3  # nothing written, nothing anchored
    ok = _cli("audit", "verify", "--config", str(cfg), "--anchor", str(tmp_path / "anchors.jsonl"), cwd=tmp_path)
    assert ok.returncode == 0 and "3 anchor(s) matched" in ok.stdout, ok.stdout + ok.stderr


def test_webhook_sink_failure_is_reported_without_the_url(store: Store) -> None:
    write_book(store)
    url = "http://127.0.0.1:9/hook?token=sekrit-token-value"
    pub = Publisher(AnchorsConfig.model_validate({"sinks": [{"kind": "webhook", "url": {"value": url},
                                                             "timeout_s": 2}]}))
    _record, failures = pub.anchor(store, source="test")
    assert len(failures) == 1 and "webhook" in failures[0] and "sekrit" not in failures[0]


# --- checking against anchors --------------------------------------------------------------------------------


def test_intact_chain_passes_with_anchors(store: Store, tmp_path: Path) -> None:
    write_book(store)
    path = tmp_path / "anchors.jsonl"
    early = _anchor_file(store, path)
    with store.session() as s:
        audit.append(s, actor="ops", kind="note", subject="x", payload={}, now=at(40))
    _anchor_file(store, path)
    r = audit.verify(store, anchors=read_anchors(path))
    assert r.ok and r.anchors_checked == 2, r.problems
    assert early["seq"] < _head(store)[0]


def test_tail_truncated_after_the_anchor_is_detected(store: Store, tmp_path: Path) -> None:
    book = write_book(store)
    path = tmp_path / "anchors.jsonl"
    _anchor_file(store, path)
    _rollback(store, book.seq["tail"] - 1)  # the last entry (no row points to it) and the head rolled back
    assert audit.verify(store).ok  # the chain alone cannot tell
    r = audit.verify(store, anchors=read_anchors(path))
    assert not r.ok
    assert [(p.table, p.seq) for p in r.problems] == [("anchor", book.seq["tail"])]
    assert "tail truncated" in r.reason and f"{path}:1" in r.reason


def test_rewritten_chain_is_detected(store: Store, tmp_path: Path) -> None:
    book = write_book(store)
    path = tmp_path / "anchors.jsonl"
    _anchor_file(store, path)
    _rewrite(store, book.seq["tail"], {"n": 666})
    assert audit.verify(store).ok  # a consistent, rebuilt chain
    r = audit.verify(store, anchors=read_anchors(path))
    assert not r.ok and "rewritten" in (r.reason or "")


def test_cli_verify_with_anchor_files_and_logs(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    store = open_store(f"sqlite:///{db}", migrate=True)
    book = write_book(store)
    jsonl = tmp_path / "anchors.jsonl"
    record = _anchor_file(store, jsonl)
    log = tmp_path / "agent.log"
    log.write_text("2026-01-01 12:00:00 INFO primeguard.daemon started\n"
                   f"2026-01-01 12:00:01 INFO primeguard.audit.anchor audit-anchor {json.dumps(record)}\n"
                   "2026-01-01 12:00:02 INFO primeguard.daemon sweep done\n")
    url = f"sqlite:///{db}"
    for src in (jsonl, log):
        ok = _cli("audit", "verify", "--store", url, "--anchor", str(src), cwd=tmp_path)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    _rollback(store, book.seq["tail"] - 1)
    store.close()
    for src in (jsonl, log):
        bad = _cli("audit", "verify", "--store", url, "--anchor", str(src), "--json", cwd=tmp_path)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        body = json.loads(bad.stdout)
        assert body["problems"][0]["table"] == "anchor" and "tail truncated" in body["problems"][0]["reason"]
    assert _cli("audit", "verify", "--store", url, cwd=tmp_path).returncode == 0  # without the anchor: unseen


@pytest.mark.parametrize(("text", "why"), [
    ("", "no audit anchors"),
    ("just a log line\n", "no audit anchors"),
    ('{"schema": "primeguard.audit_anchor/1", "seq": -1, "hash": "' + "0" * 64 + '"}\n', ":1: seq"),
    ('\n{"schema": "primeguard.audit_anchor/1", "seq": 3, "hash": "xyz"}\n', ":2: hash"),
    ('{"schema": "other/1", "seq": 3}\n', "not an audit anchor"),
    ("{not json\n", "not a JSON anchor record"),
])
def test_malformed_anchor_files_are_refused_with_file_and_line(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=why):
        read_anchors(path)
    out = _cli("audit", "verify", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--anchor", str(path), cwd=tmp_path)
    flat = "".join(out.stderr.split())  # the error console wraps long lines
    assert out.returncode == 2 and "".join(why.split()) in flat and "bad.jsonl" in flat, out.stderr
