"""CEX venue simulators (Binance, OKX, Bybit) speaking each venue's REST wire format."""
