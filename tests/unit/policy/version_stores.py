"""Version stores for tests: in memory, and a directory of JSON files (one writer at a time).

Production keeps versions in the agent's database (``primeguard.app.policy_versions.DbVersionStore``);
these implement the same :class:`~primeguard.policy.versions.VersionStore` protocol for the pure
propose/approve tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from primeguard.domain.errors import PolicyError
from primeguard.policy.loader import files_from_canonical
from primeguard.policy.versions import PolicyVersion, VersionState


class MemoryVersionStore:
    """Versions in a dict."""

    def __init__(self) -> None:
        self._versions: dict[str, PolicyVersion] = {}

    def get(self, policy_hash: str) -> PolicyVersion | None:
        return self._versions.get(policy_hash)

    def all(self) -> list[PolicyVersion]:
        return sorted(self._versions.values(), key=lambda v: (v.proposed_at, v.hash))

    def save(self, versions: Sequence[PolicyVersion]) -> None:
        for v in versions:
            self._versions[v.hash] = v


class FileVersionStore:
    """A directory of versions: ``versions/<hash>.json`` (content, immutable) + ``index.json`` (states)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def _index_path(self) -> Path:
        return self.directory / "index.json"

    def _content_path(self, policy_hash: str) -> Path:
        if not all(c in "0123456789abcdef" for c in policy_hash) or len(policy_hash) != 64:
            raise PolicyError(f"not a policy hash: {policy_hash[:70]!r}")
        return self.directory / "versions" / f"{policy_hash}.json"

    def _index(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise PolicyError(f"{self._index_path}: unreadable version index: {exc}") from exc
        rows = data.get("versions") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise PolicyError(f"{self._index_path}: not a version index")
        return [r for r in rows if isinstance(r, dict)]

    def _version(self, row: Mapping[str, Any]) -> PolicyVersion:
        h = str(row["hash"])
        path = self._content_path(h)
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: policy version content missing: {exc}") from exc
        if hashlib.sha256(content.encode("utf-8")).hexdigest() != h:
            raise PolicyError(f"{path}: content does not match its hash (altered on disk?)")
        return PolicyVersion(
            hash=h, files=MappingProxyType(files_from_canonical(content)), proposed_by=str(row["proposed_by"]),
            proposed_at=datetime.fromisoformat(str(row["proposed_at"])), state=VersionState(str(row["state"])),
            note=str(row.get("note") or ""), approved_by=row.get("approved_by"),
            approved_at=datetime.fromisoformat(row["approved_at"]) if row.get("approved_at") else None,
            closed_at=datetime.fromisoformat(row["closed_at"]) if row.get("closed_at") else None,
            proposed_by_id=_opt_int(row.get("proposed_by_id")), approved_by_id=_opt_int(row.get("approved_by_id")),
        )

    def get(self, policy_hash: str) -> PolicyVersion | None:
        for row in self._index():
            if row.get("hash") == policy_hash:
                return self._version(row)
        return None

    def all(self) -> list[PolicyVersion]:
        return sorted((self._version(r) for r in self._index()), key=lambda v: (v.proposed_at, v.hash))

    def save(self, versions: Sequence[PolicyVersion]) -> None:
        (self.directory / "versions").mkdir(parents=True, exist_ok=True)
        for v in versions:
            path = self._content_path(v.hash)
            if not path.exists():  # content is immutable: written once, never rewritten
                _atomic_write(path, v.content)
        rows = {str(r["hash"]): r for r in self._index()}
        for v in versions:
            meta = v.meta()
            meta.pop("files")
            rows[v.hash] = meta
        ordered = sorted(rows.values(), key=lambda r: (str(r["proposed_at"]), str(r["hash"])))
        _atomic_write(self._index_path, json.dumps({"versions": ordered}, indent=2, sort_keys=True) + "\n")


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
