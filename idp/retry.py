"""Retrying deliveries (mail, back-channel logout): one rule for both."""

from __future__ import annotations

from .security.clock import now


def record_failure(item, error: Exception, *, max_attempts: int, base: int, cap: int) -> bool:
    """Count a failed attempt on ``item`` (attempts, last_error, next_attempt_at
    or failed_at). Exponential backoff from ``base`` seconds, capped; True when
    the item is given up."""
    t = now()
    item.attempts += 1
    item.last_error = f"{type(error).__name__}: {error}"[:1000]
    if item.attempts >= max_attempts:
        item.failed_at = t
        return True
    item.next_attempt_at = t + min(cap, base * 2 ** (item.attempts - 1))
    return False
