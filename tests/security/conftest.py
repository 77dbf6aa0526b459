"""Security tests reuse the web suite's seeded book (a real store, policy engine and app)."""

from __future__ import annotations

from tests.web.conftest import app, client, seed_template, seeded  # noqa: F401 - pytest fixtures
