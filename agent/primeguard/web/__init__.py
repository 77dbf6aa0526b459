"""FastAPI JSON API and server-rendered dashboard over the store (see docs/web.md).

    from primeguard.web import create_app, serve
    app = create_app(store, withdrawals=service, policy_dir=Path("policies"))
    serve("sqlite:///primeguard.db", port=8765, policy_dir=Path("policies"))
"""

from primeguard.web.app import create_app
from primeguard.web.server import running, serve

__all__ = ["create_app", "running", "serve"]
