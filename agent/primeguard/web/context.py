"""What every route needs: the store, the sessions, the injected services."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from primeguard.store.db import Store
from primeguard.web.auth import SessionStore
from primeguard.web.queries import PolicyCache

if TYPE_CHECKING:
    from primeguard.custody.destinations import Destinations
    from primeguard.custody.withdrawals import WithdrawalService
    from primeguard.playbooks.engine import Playbook


@dataclass
class WebContext:
    store: Store
    sessions: SessionStore
    playbook: Playbook
    withdrawals: WithdrawalService | None = None
    policy_dir: Path | None = None
    secure_cookies: bool = False
    policy_cache: PolicyCache = field(default_factory=PolicyCache)
    destinations: Destinations | None = None

    def vault_ids(self) -> list[str]:
        """Accounts a withdrawal may leave from (the service's configured vaults)."""
        cfg: Any = getattr(self.withdrawals, "cfg", None)
        return [v.id for v in getattr(cfg, "vaults", ())] if cfg is not None else []


def ctx_of(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx
