"""Screening with the store: ask every configured source, cache, audit, and raise a critical
finding on a hit. Used for allowlist additions, withdrawals (request and execute) and approval
spenders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.decision import Decision
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.screening.core import (
    Screening,
    ScreeningCache,
    SourceAnswer,
    SourceStatus,
    VerdictStatus,
    screening_decision,
)
from primeguard.screening.oracle import ask_oracle
from primeguard.store import audit, repos
from primeguard.store import screening as lists_repo

OracleCall = Callable[[str, str, str, str], SourceAnswer]  # rpc_url, oracle, address, source


class Screener:
    """Screens addresses per chain against the config's oracles and the store's imported lists."""

    def __init__(self, cfg: PrimeguardConfig, *, ask: OracleCall | None = None,
                 policy: Callable[[], Any] | None = None) -> None:
        """``policy``: returns the policy in force (its ``screening`` guard, when it has one, says
        which sources only advise; otherwise the config's ``screening.advisory`` does)."""
        self.cfg = cfg
        sc = cfg.screening
        self._config_advisory = frozenset(sc.advisory) if sc else frozenset()
        self._policy = policy
        self.cache = ScreeningCache(sc.ttl_s if sc else 0)
        self._ask = ask or (lambda rpc, oracle, addr, source: ask_oracle(rpc, oracle, addr, source=source))

    @property
    def advisory(self) -> frozenset[str]:
        """The sources whose failure to answer does not deny: the policy's screening guard when the
        policy in force has one, else the config's list. Every other source is authoritative."""
        guards = getattr(self._policy() if self._policy is not None else None, "guards", None)
        if guards is not None and guards.screening_id is not None:
            return frozenset(guards.screening_advisory)
        return self._config_advisory

    def _answers(self, session: Session, chain: str, address: str) -> tuple[SourceAnswer, ...]:
        sc = self.cfg.screening
        if sc is None:
            return ()
        out: list[SourceAnswer] = []
        rpc = {c.id: c.rpc_url for c in self.cfg.chains}
        for o in sc.oracles:
            if o.chain == chain and o.chain in rpc:
                out.append(self._ask(rpc[o.chain], o.address, address, f"oracle:{o.chain}"))
        if sc.local_lists:
            try:
                hits = lists_repo.listed_in(session, address)
            except Exception as exc:
                out.append(SourceAnswer("lists", SourceStatus.UNAVAILABLE, type(exc).__name__))
            else:
                if hits:
                    out += [SourceAnswer(f"list:{src}", SourceStatus.HIT, label or "") for src, label in hits]
                elif out:  # the lists add to an oracle; on their own they are no screening
                    out.append(SourceAnswer("lists", SourceStatus.CLEAR))
        return tuple(out)

    def screen(self, session: Session, chain: str, address: str, *, now: datetime, fresh: bool = False,
               actor: str = "screening", client_id: str | None = None, what: str = "destination") -> Screening:
        """Every source's answer (from the cache unless ``fresh``). A fresh answer is audited
        (``screening.checked``); a hit opens a critical ``sanctioned_address`` finding; a source that
        could not answer opens a ``screening_unavailable`` finding (a blind spot). A clear answer
        closes the address's ``sanctioned_address`` finding and the chain's ``screening_unavailable``
        one. All in ``session``."""
        cached = None if fresh else self.cache.get(chain, address, now)
        if cached is not None:
            return cached
        s = Screening(address, chain, self._answers(session, chain, address), now)
        self.cache.put(s)
        advisory = self.advisory
        verdict = s.verdict(advisory)
        audit.append(session, actor=actor, kind="screening.checked", subject=address,
                     payload={**s.json(advisory), "what": what}, now=now)
        hit = Finding(FindingCode.SANCTIONED_ADDRESS, Severity.CRITICAL, address,
                      f"{what} {address} is sanctioned ({s.explain()})", venue="screening", chain=chain,
                      client_id=client_id, details={"what": what})
        down = Finding(FindingCode.SCREENING_UNAVAILABLE, Severity.HIGH, chain,
                       f"screening on {chain} could not answer ({s.explain()}): withdrawals fail closed",
                       venue="screening", chain=chain)
        if verdict is VerdictStatus.SANCTIONED:
            repos.upsert_finding(session, hit, now=now)
        elif verdict is VerdictStatus.UNAVAILABLE:
            repos.upsert_finding(session, down, now=now)
        # A screening finding lasts until a later screening of its subject answers otherwise.
        if verdict is VerdictStatus.CLEAR:
            repos.close_findings(session, keys=[hit.key, down.key], now=now)
        return s

    def decide(self, session: Session, chain: str, address: str, *, now: datetime, fresh: bool = False,
               actor: str = "screening", client_id: str | None = None, what: str = "destination"
               ) -> tuple[Screening, Decision | None]:
        """:meth:`screen`, and the denial it implies (``None`` when clear)."""
        s = self.screen(session, chain, address, now=now, fresh=fresh, actor=actor, client_id=client_id, what=what)
        return s, screening_decision(s, self.advisory, what=what)


def screening_chain(cfg: PrimeguardConfig, chain_or_network: str | None) -> str:
    """The configured chain whose oracle screens a destination on ``chain_or_network`` (a CEX
    withdrawal's network name ``ethereum`` maps to the chain of that id, if configured)."""
    name = chain_or_network or ""
    ids = {c.id for c in cfg.chains}
    return name if name in ids else ("ethereum" if "ethereum" in ids else name)



__all__ = ["Screener", "screening_chain"]
