"""Security tests reuse the web suite's seeded book (a real store, policy engine and app) and the
store suite's databases (SQLite, and a real embedded PostgreSQL under the ``postgres`` marker)."""

from __future__ import annotations

from tests.store.conftest import (  # noqa: F401 - pytest fixtures
    pg_server_url,
    pg_url,
    pg_work_url,
    sqlite_template,
    sqlite_url,
    store,
    store_url,
)
from tests.web.conftest import app, client, seed_template, seeded  # noqa: F401 - pytest fixtures
