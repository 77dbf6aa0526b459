"""Web fixtures: a temp SQLite store seeded through the repositories, the app over it, a client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from primeguard.store import open_store
from primeguard.web import create_app
from tests.web.seed import Seeded, seed


@pytest.fixture(scope="session")
def seed_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """Seed once per session; each test gets a copy of the database file."""
    root = tmp_path_factory.mktemp("web-seed")
    store = open_store(f"sqlite:///{root / 'template.db'}", migrate=True)
    template = seed(store, root)
    store.close()  # last connection: the WAL is checkpointed into the file
    return root / "template.db", template


@pytest.fixture
def seeded(tmp_path: Path, seed_template: tuple[Path, Seeded]) -> Iterator[Seeded]:
    path, template = seed_template
    shutil.copyfile(path, tmp_path / "web.db")
    store = open_store(f"sqlite:///{tmp_path / 'web.db'}")
    try:
        yield template.rebind(store)
    finally:
        store.close()


@pytest.fixture
def app(seeded: Seeded):
    return create_app(seeded.store, withdrawals=seeded.service, playbook=seeded.playbook, policy_dir=seeded.policy_dir)


@pytest.fixture
def dest_service(seeded: Seeded):
    """The destination lifecycle over the seeded store (its config has no chain to reach and no
    screening source: screening fails closed, vault reads are unreadable)."""
    from primeguard.app.policy_source import active_policy
    from primeguard.app.policy_versions import DbVersionStore
    from primeguard.custody.destinations import Destinations
    from tests.web.seed import service_config

    cfg, base = service_config(), seeded.policy_dir.parent
    return Destinations(cfg, seeded.store, config_dir=base, versions=DbVersionStore(seeded.store),
                        policy=lambda: active_policy(cfg, seeded.store, base))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def login(client: TestClient, token: str) -> str:
    """Sign in through the login form; returns the session's CSRF token (read from a page)."""
    page = client.get("/login")
    csrf = _hidden(page.text, "csrf")
    resp = client.post("/login", data={"token": token, "csrf": csrf, "next": "/"})
    assert resp.status_code == 303, resp.text
    return csrf_of(client)


def csrf_of(client: TestClient, path: str = "/timeline") -> str:
    return _hidden(client.get(path).text, "csrf")


def _hidden(html: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
