"""Run the dashboard: :func:`serve` (foreground, for ``primeguard web``) and :func:`running`
(a background thread on a free port, for the demo and tests)."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from primeguard.store.db import open_store
from primeguard.web.app import create_app

_QUERY_VALUE = re.compile(r"([?&][^=&?#\s\"']*)=([^&#\s\"']*)")


def redact_query_values(text: str) -> str:
    """``text`` with the value of every query parameter replaced by ``*`` (names kept)."""
    return _QUERY_VALUE.sub(lambda m: f"{m.group(1)}=*", text)


class RedactQueryStrings(logging.Filter):
    """Drops query-string values from log records (uvicorn's access log puts the full URL in its
    arguments). A credential sent in a URL, which the app refuses, therefore never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query_values(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_query_values(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact_query_values(record.msg)
        return True


def log_config(level: str = "info", *, own_loggers: bool = False) -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactQueryStrings` on every handler. With
    ``own_loggers`` (a process of its own: ``serve``), our loggers (``primeguard.*``) go through the
    same redacting handler; in-process servers leave the host's logging of ``primeguard`` alone."""
    cfg = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    cfg.setdefault("filters", {})["redact_query"] = {"()": f"{__name__}.RedactQueryStrings"}
    for handler in cfg["handlers"].values():
        handler.setdefault("filters", []).append("redact_query")
    if own_loggers:
        cfg["loggers"]["primeguard"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg


def serve(store_url: str, host: str = "127.0.0.1", port: int = 8765, *, migrate: bool = True,
          log_level: str = "info", **deps: Any) -> None:
    """Open the store and serve the API and dashboard until interrupted.

    Args:
        store_url: the daemon's store (``sqlite:///...`` or ``postgresql://...``).
        host, port: where to listen (loopback by default; put TLS in front for anything else and
            pass ``secure_cookies=True``).
        migrate: bring the schema to the newest migration first (idempotent).
        **deps: passed to :func:`create_app` (``withdrawals``, ``playbook``, ``policy_dir``,
            ``secure_cookies``, ``destinations``).
    """
    store = open_store(store_url, migrate=migrate)
    try:
        app = create_app(store, **deps)
        uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=log_config(log_level, own_loggers=True),
                    server_header=False, proxy_headers=False, access_log=True, h11_max_incomplete_event_size=32 * 1024)
    finally:
        store.close()


class BackgroundServer:
    """A uvicorn server in a daemon thread; ``url`` is where it listens."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", log_config=log_config("warning"), server_header=False,
                                access_log=False, lifespan="off", h11_max_incomplete_event_size=32 * 1024)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name=f"primeguard-web-{self.port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()


@contextlib.contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[BackgroundServer]:
    """Serve ``app`` in a background thread for the duration of the block (port 0: a free port)."""
    srv = BackgroundServer(app, host, port)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
