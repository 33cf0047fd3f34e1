"""The account-wide rate limit: a token bucket read on the emulator's clock (pure logic, thread-safe).

Why a small class and not ``aiolimiter`` or ``limits``: the bucket must follow the emulator's
injectable clock (a ``ManualClock`` that tests advance by hand), refuse at once rather than wait,
and say how long to wait (the 429's ``Retry-After``). ``aiolimiter.AsyncLimiter`` reads the event
loop's own clock and makes callers wait; its level is private, so no Retry-After. ``limits`` offers
fixed, moving and sliding windows, not a continuously refilled bucket, and its in-memory storage
reads ``time.time()``. Neither expresses this limit exactly.
"""

from __future__ import annotations

import math
import threading

__all__ = ["TokenBucket"]


class TokenBucket:
    """``requests`` per ``per_seconds``, refilled continuously; burst = ``requests``.

    :param requests: the bucket's size and the tokens added per ``per_seconds``.
    :param per_seconds: the refill period.
    :param now: the clock's time in seconds when the bucket starts (full).
    """

    def __init__(self, requests: int, per_seconds: float, now: float) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError("rate limit needs requests >= 1 and per_seconds > 0")
        self.capacity = float(requests)
        self.rate = requests / per_seconds
        self._tokens = self.capacity
        self._stamp = now
        self._lock = threading.Lock()

    def take(self, now: float) -> int | None:
        """Take a token; return None on success, else the Retry-After in whole seconds."""
        with self._lock:
            if now > self._stamp:
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._tokens) / self.rate))
