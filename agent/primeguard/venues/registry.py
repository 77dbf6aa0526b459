"""Every venue adapter, registered in one place; the sweep pipeline iterates this.

Adding a venue: write a module with a :class:`~primeguard.venues.base.Collector` (and, if it can
act, :class:`~primeguard.venues.base.Levers`) and add one :class:`Registration` below.

An adapter's module is imported only when the config has accounts for it (``accounts`` names the
config field listing them), so a venue's client libraries never load in a process that does not
use that venue.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import Collector, Lever, Levers


@dataclass(frozen=True)
class Registration:
    """One venue: its name, where its adapter lives (``module:attr``, a class with no arguments),
    and the config field listing its accounts (``None``: always loaded)."""

    name: str
    target: str
    accounts: str | None

    def wanted(self, cfg: PrimeguardConfig) -> bool:
        return self.accounts is None or bool(getattr(cfg, self.accounts))

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)()


REGISTRY: tuple[Registration, ...] = (
    Registration("evm", "primeguard.venues.evm.adapter:EvmCollector", None),
    Registration("cex", "primeguard.venues.cex.collector:CexCollector", "cex_accounts"),
    Registration("dydx", "primeguard.venues.dydx.adapter:DydxVenue", "dydx_accounts"),
)

_LOADED: dict[str, Any] = {}


def _adapter(reg: Registration) -> Any:
    if reg.name not in _LOADED:
        _LOADED[reg.name] = reg.load()
    return _LOADED[reg.name]


def configured(cfg: PrimeguardConfig) -> tuple[Collector, ...]:
    """The collectors with something to read in ``cfg``, in registry order (the order snapshots
    appear in an observation). Imports an adapter only when ``cfg`` has accounts for it."""
    out: list[Collector] = []
    for reg in REGISTRY:
        if reg.wanted(cfg):
            c = _adapter(reg)
            if c.configured(cfg):
                out.append(c)
    return tuple(out)


def levers(cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
    """Every configured venue's playbook levers by action kind (later registrations win a clash)."""
    out: dict[str, Lever] = {}
    for c in configured(cfg):
        if isinstance(c, Levers):
            out.update(c.levers(cfg, config_dir=config_dir))
    return out
