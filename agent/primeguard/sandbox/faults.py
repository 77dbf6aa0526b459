"""Fault injection settings shared by every simulator (CEX, dYdX indexer, ...)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaultConfig(BaseModel):
    """What a simulator does wrong on purpose. Probabilities are per request, 0..1.

    ``down`` refuses every request with 503; ``timeout_s`` makes requests hang that long.
    A fault can be limited to paths containing ``only_paths`` substrings.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0)
    rate_limit_every: int = Field(default=0, ge=0)  # every Nth request gets 429 with Retry-After
    retry_after_s: int = Field(default=1, ge=0)
    error_5xx_rate: float = Field(default=0, ge=0, le=1)
    timeout_rate: float = Field(default=0, ge=0, le=1)
    timeout_s: float = Field(default=30, ge=0)
    malformed_rate: float = Field(default=0, ge=0, le=1)
    down: bool = False
    only_paths: tuple[str, ...] = ()
    seed: int = 7
