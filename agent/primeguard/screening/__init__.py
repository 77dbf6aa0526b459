"""Screening of destinations and spenders: an on-chain sanctions oracle and imported lists, cached,
fail closed. :mod:`.core` is pure (verdicts, decisions, cache); :mod:`.oracle` and :mod:`.lists`
are the edges (a chain read, file imports); :mod:`.service` puts them together with the store."""
