"""The example production config loads, and production refuses inline secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from primeguard.config import load_config
from primeguard.domain.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "deploy" / "production.example.yaml"


def test_example_production_config_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.production and cfg.cex_accounts[0].credentials[0].secret.env
    assert cfg.custody is not None and cfg.custody.password.env == "PRIMEGUARD_KEYSTORE_PASSWORD"


def test_production_refuses_inline_secret(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cex_accounts"][0]["credentials"][0]["secret"] = {"value": "canary-secret-123"}
    bad = tmp_path / "config.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="inline secret values are not allowed") as info:
        load_config(bad)
    assert "canary-secret-123" not in str(info.value)
