"""Which policy is in force: the store's active (approved) version, else the config's policy
directory (sandbox and first start). A policy that does not load means no policy: fail closed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from primeguard.config.schema import PrimeguardConfig
from primeguard.policy.engine import warm_up
from primeguard.policy.policyset import PolicySet
from primeguard.store import repos
from primeguard.store.db import Store

log = logging.getLogger(__name__)

ActivePolicy: TypeAlias = PolicySet | None
"""The policy in force, or ``None``: no policy, so every withdrawal is denied and the strictest
built-in ladder is used."""


def active_policy(cfg: PrimeguardConfig, store: Store, config_dir: Path) -> ActivePolicy:
    """The store's active policy version, else the config's policy directory; ``None`` when there is
    none or it does not load (logged by error type only). Reads, never writes; never raises for a
    broken policy. Parses every time: long-lived callers use :class:`PolicySource`."""
    return PolicySource(cfg, store, config_dir).current()


class PolicySource:
    """The policy in force, parsed once per content hash.

    Each :meth:`current` call asks the store which version is active (its hash only) or reads the
    policy directory's files and hashes them; the policy is parsed again only when that hash
    differs from the last one parsed. A version that does not load is remembered as ``None`` under
    its hash (fail closed, logged once), so a broken version is not re-parsed every sweep either.
    After each successful parse it makes a few throw-away decisions under the new version
    (:func:`~primeguard.policy.engine.warm_up`), so the first real decision does not pay a cold
    start. ``parses`` counts the parses made, ``warm_ups`` those decisions (for tests and metrics).
    """

    def __init__(self, cfg: PrimeguardConfig, store: Store, config_dir: Path) -> None:
        self.cfg = cfg
        self.store = store
        self.config_dir = config_dir
        self.parses = 0
        self.warm_ups = 0
        self._key: str | None = None
        self._policy: ActivePolicy = None
        self._lock = threading.Lock()

    def current(self) -> ActivePolicy:
        """The policy in force now (``None``: none, or it does not load). Never raises for a
        broken policy; store errors propagate (as :func:`active_policy` always did)."""
        from primeguard.policy.bundle import content_hash
        from primeguard.policy.loader import files_from_canonical, load_bundle, read_policy_dir

        with self.store.session(readonly=True) as s:
            active_hash = repos.get_active_policy_hash(s)
        try:
            if active_hash is not None:
                key = f"store:{active_hash}"
                if key == self._key:
                    return self._policy

                def parse_store() -> PolicySet:
                    with self.store.session(readonly=True) as s:
                        row = repos.get_policy_version(s, active_hash)
                    if row is None:  # retired between the two reads: the next call sees the new one
                        raise LookupError("active policy version vanished")
                    return load_bundle(files_from_canonical(row.content))
                return self._load(key, parse_store)
            pdir = policy_dir(self.cfg, self.config_dir)
            if not pdir.is_dir():
                return self._remember("none", None)
            files = read_policy_dir(pdir)
            key = f"dir:{content_hash(files)}"
            if key == self._key:
                return self._policy
            return self._load(key, lambda: load_bundle(files, root=str(pdir)))
        except Exception as exc:  # a broken policy must never mean "no rules": it means "deny everything"
            log.error("policy could not be loaded (%s): failing closed", type(exc).__name__)
            return None

    def _load(self, key: str, parse: Callable[[], PolicySet]) -> ActivePolicy:
        with self._lock:
            if key == self._key:
                return self._policy
            self.parses += 1
            try:
                policy: ActivePolicy = parse()
            except Exception as exc:
                log.error("policy could not be loaded (%s): failing closed", type(exc).__name__)
                policy = None
            if policy is not None:
                # Throw-away decisions, so the first real one after a load does not pay a cold start.
                self.warm_ups += warm_up(policy)
            return self._remember(key, policy)

    def _remember(self, key: str, policy: ActivePolicy) -> ActivePolicy:
        self._key, self._policy = key, policy
        return policy


def policy_dir(cfg: PrimeguardConfig, config_dir: Path) -> Path:
    """The config's policy directory, a relative path resolved against the config's folder."""
    pdir = Path(cfg.policy_dir)
    return pdir if pdir.is_absolute() else config_dir / pdir


def store_url(cfg: PrimeguardConfig, config_dir: Path) -> str:
    """The store URL with a relative SQLite path resolved against the config's folder."""
    url = cfg.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{(config_dir / url.removeprefix('sqlite:///')).resolve()}"
    return url
