"""primeguard: custody and wallet-policy agent for crypto prime brokers."""
__version__ = "0.1.0"
