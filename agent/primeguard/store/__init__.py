"""primeguard's persistent state: SQLModel tables, repositories, Alembic migrations, audit chain.

    from primeguard.store import open_store, repos, audit
    store = open_store(config.store.url, migrate=True)
    with store.session() as s:                      # one transaction; commits on exit
        repos.record_decision(s, decision, kind="withdrawal", subject=wid, input=inputs)
    audit.verify(store)                             # VerifyResult(ok=..., ...)

See docs/store.md.
"""

from primeguard.store.audit import VerifyResult, verify
from primeguard.store.db import Store, open_store
from primeguard.store.errors import IllegalTransition, NotFound, StaleState

__all__ = ["IllegalTransition", "NotFound", "StaleState", "Store", "VerifyResult", "open_store", "verify"]
