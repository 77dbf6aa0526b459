"""Venue adapters, one folder per kind: ``cex`` (ccxt), ``evm`` (web3), ``dydx`` (indexer + node).

Each adapter returns domain values only (:mod:`primeguard.domain`); subpackages are imported on use.
"""
