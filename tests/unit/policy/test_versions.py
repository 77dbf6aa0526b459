"""propose / approve: content-hashed versions, four eyes, one active version, tamper detection."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from primeguard.domain.errors import PolicyError, PolicyLoadError
from primeguard.policy import (
    PolicyApprovalError,
    VersionState,
    VersionStore,
    approve,
    content_hash,
    load_active,
    propose,
)
from primeguard.policy.versions import active_version, reject, resolve
from tests.unit.policy.helpers import NOW, example_files, small_docs, to_files
from tests.unit.policy.version_stores import FileVersionStore, MemoryVersionStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VersionStore:
    return MemoryVersionStore() if request.param == "memory" else FileVersionStore(tmp_path / "versions")


def test_propose_then_approve_by_another_compliance_user(store: VersionStore) -> None:
    files = example_files()
    v = propose(store, files, proposer="carol", role="compliance", now=NOW, note="initial")
    assert v.state is VersionState.PROPOSED and v.hash == content_hash(files)
    assert load_active(store) is None  # nothing decides before approval
    with pytest.raises(PolicyApprovalError, match=r"carol proposed .* cannot approve"):
        approve(store, v.hash, approver="carol", role="compliance", now=NOW)
    with pytest.raises(PolicyApprovalError, match="a compliance user must"):
        approve(store, v.hash, approver="tom", role="treasury", now=NOW)
    active = approve(store, v.hash[:10], approver="dave", role="compliance", now=NOW + timedelta(minutes=5))
    assert (active.state, active.approved_by) == (VersionState.ACTIVE, "dave")
    policy = load_active(store)
    assert policy is not None and policy.hash == v.hash
    with pytest.raises(PolicyError, match="is active; only proposed"):
        approve(store, v.hash, approver="erin", role="compliance", now=NOW)


def test_a_new_approval_supersedes_the_active_version(store: VersionStore) -> None:
    first = propose(store, example_files(), proposer="carol", role="compliance", now=NOW)
    approve(store, first.hash, approver="dave", role="compliance", now=NOW)
    second = propose(store, to_files(small_docs()), proposer="dave", role="compliance", now=NOW + timedelta(hours=1))
    assert propose(store, to_files(small_docs()), proposer="erin", role="compliance", now=NOW) == second  # idempotent
    approve(store, second.hash, approver="carol", role="compliance", now=NOW + timedelta(hours=2))
    states = {v.hash: v.state for v in store.all()}
    assert states == {first.hash: VersionState.SUPERSEDED, second.hash: VersionState.ACTIVE}
    active = active_version(store)
    assert active is not None and active.hash == second.hash
    old = store.get(first.hash)
    assert old is not None and old.files == example_files()  # versions are kept


def test_invalid_or_lint_failing_files_cannot_be_proposed(store: VersionStore) -> None:
    files = example_files()
    files["approvals.yaml"] = files["approvals.yaml"].replace("required: 1", "required: 0")
    with pytest.raises(PolicyLoadError, match=r"approvals\.yaml"):
        propose(store, files, proposer="carol", role="compliance", now=NOW)
    docs = small_docs()
    docs["appr.yaml"]["rules"][1]["approvers"] = ["carol"]  # L402: 2 required, 1 named
    with pytest.raises(PolicyError, match="L402"):
        propose(store, to_files(docs), proposer="carol", role="compliance", now=NOW)
    with pytest.raises(PolicyApprovalError, match="may not propose"):
        propose(store, example_files(), proposer="vic", role="viewer", now=NOW)
    assert store.all() == []


def test_reject_and_prefix_resolution(store: VersionStore) -> None:
    v = propose(store, example_files(), proposer="carol", role="compliance", now=NOW)
    with pytest.raises(PolicyError, match="too short"):
        resolve(store, v.hash[:4])
    with pytest.raises(PolicyError, match="no policy version"):
        resolve(store, "ffffffffffff")
    assert reject(store, v.hash[:8], actor="dave", role="compliance", now=NOW).state is VersionState.REJECTED
    with pytest.raises(PolicyError, match="rejected"):
        approve(store, v.hash, approver="dave", role="compliance", now=NOW)


def test_file_store_detects_tampering(tmp_path: Path) -> None:
    store = FileVersionStore(tmp_path)
    v = propose(store, example_files(), proposer="carol", role="compliance", now=NOW)
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["versions"][0]["hash"] == v.hash
    content = tmp_path / "versions" / f"{v.hash}.json"
    content.write_text(content.read_text().replace("100000", "900000"))
    with pytest.raises(PolicyError, match="does not match its hash"):
        approve(store, v.hash, approver="dave", role="compliance", now=NOW)
