"""Token-bucket rate limits, one bucket per API key and one per client address.

A bucket holds up to ``burst`` tokens and gains ``per_second`` tokens a second; each request
takes one. An empty bucket answers 429 with ``Retry-After`` (seconds until a token is back).
Every answer carries ``X-RateLimit-Limit`` (the burst), ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the bucket is full again).

Buckets live in the memory of one worker process: with ``--workers N`` a client may get up
to N times the configured rate. Idle buckets are dropped so memory stays bounded.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from neurolake_spark.config import RateLimitSettings

MAX_BUCKETS = 100_000


@dataclass
class Verdict:
    """The outcome of taking one token."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    """Buckets by key (``"key:<id>"``, ``"addr:<ip>"``), all with the same burst and refill."""

    def __init__(self, settings: RateLimitSettings, clock=time.monotonic):
        self.burst = settings.burst
        self.rate = settings.per_second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def take(self, key: str) -> Verdict:
        """Take one token from ``key``'s bucket."""
        now = self.clock()
        with self._lock:
            tokens, updated = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._drop_full(now)
            self._buckets[key] = (tokens, now)
        return Verdict(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset_seconds=math.ceil((self.burst - tokens) / self.rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)),
        )

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled completely (they hold no state worth keeping)."""
        full = [k for k, (t, u) in self._buckets.items() if t + (now - u) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: forget the oldest half
            for key, _ in sorted(self._buckets.items(), key=lambda item: item[1][1])[: MAX_BUCKETS // 2]:
                del self._buckets[key]
