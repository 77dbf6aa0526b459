"""The agent's configuration: what to watch and where. Loaded from YAML, validated strictly."""

from primeguard.config.loader import load_config, load_yaml_model
from primeguard.config.schema import (
    CexAccountConfig,
    ChainConfig,
    ClientConfig,
    CredentialConfig,
    DydxAccountConfig,
    FeedConfig,
    PrimeguardConfig,
    SecretRef,
    TokenConfig,
    WalletConfig,
)

__all__ = [
    "CexAccountConfig",
    "ChainConfig",
    "ClientConfig",
    "CredentialConfig",
    "DydxAccountConfig",
    "FeedConfig",
    "PrimeguardConfig",
    "SecretRef",
    "TokenConfig",
    "WalletConfig",
    "load_config",
    "load_yaml_model",
]
