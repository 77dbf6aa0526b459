"""How the app is assembled, in one place: :meth:`Runtime.from_config` reads the config and opens
the store; the rest (active policy, venues, notifier, playbooks, withdrawal service, anchors,
policy versions) is built from them on first use. The CLI, the web server, the demo and the daemon
all start from a :class:`Runtime`."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from primeguard.alerts.client import ClientNotifier, notice
from primeguard.alerts.notifier import Notifier
from primeguard.app.policy_source import ActivePolicy, PolicySource, policy_dir, store_url
from primeguard.app.policy_versions import DbVersionStore
from primeguard.config.schema import PrimeguardConfig
from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.destinations import Destinations
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.playbooks.engine import Lever, Playbook
from primeguard.store.anchors import Publisher
from primeguard.store.db import Store, open_store
from primeguard.store.tables import ActionRow

_UNSET: Any = object()


class Runtime:
    """The assembled app: config, its folder, the open store, and what is built from them.

    Relative paths in the config (store file, policy directory, keystores, anchor files) resolve
    against ``config_dir``. Parts are built on first use and kept, except the active policy, which
    is looked up again on every :meth:`policy` call (a newly approved version takes effect at once)
    and parsed only when its content hash changes (:class:`PolicySource`).
    """

    def __init__(self, cfg: PrimeguardConfig, config_dir: Path, store: Store) -> None:
        self.cfg = cfg
        self.config_dir = config_dir
        self.store = store

    @classmethod
    def from_config(cls, path: Path, *, migrate: bool = True) -> Runtime:
        """Load the config file at ``path`` and open its store (migrated unless ``migrate=False``).

        Raises:
            ConfigError: the config does not load (file:line in the message).
            StoreError: the store cannot be opened.
        """
        from primeguard.config import load_config

        return cls.assemble(load_config(path), path.parent.resolve(), migrate=migrate)

    @classmethod
    def assemble(cls, cfg: PrimeguardConfig, config_dir: Path, *, store: Store | None = None,
                 migrate: bool = True) -> Runtime:
        """A runtime over an already loaded ``cfg``; opens the config's store unless ``store`` is given."""
        return cls(cfg, config_dir, store or open_store(store_url(cfg, config_dir), migrate=migrate))

    # --- paths ------------------------------------------------------------------------------

    @property
    def store_url(self) -> str:
        """The store URL, a relative SQLite path resolved against the config's folder."""
        return store_url(self.cfg, self.config_dir)

    @property
    def policy_dir(self) -> Path:
        """The config's policy directory, resolved against the config's folder."""
        return policy_dir(self.cfg, self.config_dir)

    # --- parts ------------------------------------------------------------------------------

    def policy(self) -> ActivePolicy:
        """The policy in force now (looked up on each call, parsed once per content hash); ``None``
        fails closed."""
        return self.policy_source.current()

    @cached_property
    def policy_source(self) -> PolicySource:
        """The policy in force, cached by content hash (see :class:`PolicySource`)."""
        return PolicySource(self.cfg, self.store, self.config_dir)

    def venues(self) -> tuple[Any, ...]:
        """The venue collectors this config has accounts on, in registry order."""
        from primeguard.venues.registry import configured

        return configured(self.cfg)

    def withdrawals(self, policy: ActivePolicy = _UNSET) -> WithdrawalService:
        """A withdrawal service deciding under ``policy`` (default: the policy in force now) with a
        live context (a fresh collection per decision)."""
        if policy is _UNSET:
            policy = self.policy()
        from primeguard.custody.destinations import DestinationGate
        from primeguard.screening.service import Screener

        context = LiveContext(self.cfg, self.store, policy)
        gate = DestinationGate(self.cfg, Screener(self.cfg, policy=lambda: policy))  # the policy's advisory sources
        return WithdrawalService(self.cfg, self.store, policy_decider(policy), context, config_dir=self.config_dir,
                                 gate=gate)

    def destinations(self) -> Destinations:
        """Destination lifecycle (allowlist propose/approve/sync/remove/status) over this store."""
        return Destinations(self.cfg, self.store, config_dir=self.config_dir, versions=self.versions(),
                            policy=self.policy)

    def versions(self) -> DbVersionStore:
        """Policy versions (propose/approve) kept in this store."""
        return DbVersionStore(self.store)

    @cached_property
    def notifier(self) -> Notifier:
        """The alert notifier over the config's channels and routes."""
        return Notifier(self.cfg.alerts, self.store, base_dir=self.config_dir)

    @cached_property
    def levers(self) -> dict[str, Lever]:
        """The playbook levers this config can pull: ``margin_call`` always (it tells the client on its
        own route); ``halt_vault`` with vaults and a custody signer; ``revoke_approval`` and
        ``revoke_grant`` (Permit2, NFT operators, EIP-7702 delegations) with a custody signer; and every configured
        venue's own levers (e.g. ``halt_cex``, ``liquidate_cex``: :func:`primeguard.venues.registry.levers`)."""
        from primeguard.playbooks.levers import (
            margin_call_lever,
            revoke_approval_lever,
            revoke_grant_lever,
            vault_pause_lever,
        )
        from primeguard.venues.registry import levers as venue_levers

        cfg, base = self.cfg, self.config_dir
        levers: dict[str, Lever] = {"margin_call": margin_call_lever(self.tell_client)}
        if cfg.vaults and cfg.custody is not None:
            levers["halt_vault"] = vault_pause_lever(cfg, config_dir=base)
        if cfg.custody is not None:
            levers["revoke_approval"] = revoke_approval_lever(cfg, config_dir=base)
            levers["revoke_grant"] = revoke_grant_lever(cfg, config_dir=base)
        levers.update(venue_levers(cfg, config_dir=base))
        return levers

    @cached_property
    def client_notifier(self) -> ClientNotifier:
        """Sends notices on each client's own route (config ``clients[].contacts``)."""
        return ClientNotifier(self.cfg, base_dir=self.config_dir)

    async def tell_client(self, action: ActionRow) -> list[dict[str, Any]]:
        """Send ``action``'s margin-call notice to its client; one delivery record per route."""
        client = self.client_notifier.client(action.client_id)
        return await self.client_notifier.send(action.client_id, notice(client, action.params), datetime.now(UTC))

    @cached_property
    def playbook(self) -> Playbook:
        """The playbook engine with this config's levers."""
        return Playbook(self.store, self.levers)

    @cached_property
    def anchors(self) -> Publisher:
        """The audit-anchor publisher over the config's sinks."""
        return Publisher(self.cfg.audit.anchors, self.config_dir)

    def close(self) -> None:
        """Close the store (idempotent)."""
        self.store.close()
