"""dYdX v4 adapter: indexer (balances, positions, oracle prices) and node (x/accountplus
authenticators, analysed for fund-moving power), plus legacy v3 STARK keys from config."""

import logging


def _quiet_import_warning(record: logging.LogRecord) -> bool:
    # dydx_v4_client builds its mainnet/testnet configs at import time and warns about their URLs.
    return "Node URL should not contain" not in record.getMessage()


logging.getLogger("dydx_v4_client.network").addFilter(_quiet_import_warning)

from primeguard.venues.dydx.collector import DydxCollector, collect, collect_many, dydx_account  # noqa: E402

__all__ = ["DydxCollector", "collect", "collect_many", "dydx_account"]
