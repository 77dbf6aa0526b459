"""``python -m primeguard.cli``: the command line."""

from primeguard.cli import app

app()
