"""Store-specific errors (all are :class:`~primeguard.domain.errors.StoreError`)."""

from __future__ import annotations

from primeguard.domain.errors import StoreError


class NotFound(StoreError):
    """The row the operation needs does not exist."""


class IllegalTransition(StoreError):
    """A state change the lifecycle does not allow (e.g. withdrawal ``denied`` → ``signed``)."""


class StaleState(StoreError):
    """Optimistic check failed: the row is not in the state the caller expected, or it changed
    concurrently. Re-read and decide again; never retry blindly."""
