"""Which policy is in force: the store's active (approved) version, else the config's policy
directory (sandbox and first start). A policy that does not load means no policy: fail closed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeAlias

from primeguard.config.schema import PrimeguardConfig
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
    broken policy."""
    from primeguard.policy.loader import files_from_canonical, load, load_bundle

    with store.session(readonly=True) as s:
        active = repos.get_active_policy(s)
    try:
        if active is not None:
            return load_bundle(files_from_canonical(active.content))
        pdir = policy_dir(cfg, config_dir)
        return load(pdir) if pdir.is_dir() else None
    except Exception as exc:  # a broken policy must never mean "no rules": it means "deny everything"
        log.error("policy could not be loaded (%s): failing closed", type(exc).__name__)
        return None


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
