"""Token buckets: per API key, per source address and per connection.

Three independent limits (see ``GatewayConfig`` for the defaults and how they were chosen):

* per API key: every signed REST request and every websocket message after login;
* per source address: traffic that is not (yet) authenticated - REST requests without a valid
  signature, websocket logins - so bad signatures cost the sender, not the venue;
* per connection: each websocket session has its own bucket as well, so one key cannot open
  many sockets and starve its own other sessions.

``RateLimiter.take`` answers None (allowed) or the seconds until a token is available;
``remaining`` is the whole tokens left, for the ``X-RateLimit-Remaining`` header and the
``remaining`` field of websocket replies.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """One bucket (e.g. one websocket connection's)."""

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, *, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> float | None:
        now = self._clock()
        tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return None
        self._tokens = tokens
        return (1.0 - tokens) / self._rate

    @property
    def remaining(self) -> int:
        return int(self._tokens)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return int(self._burst)


class RateLimiter:
    """Buckets by name; full buckets are forgotten, so the table only holds recently active names."""

    _SWEEP_EVERY = 4096

    def __init__(self, *, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._takes = 0

    @property
    def limit(self) -> int:
        return int(self._burst)

    def take(self, key_id: str) -> float | None:
        """Spend one token; returns None when allowed, else the seconds until a token is available."""
        now = self._clock()
        self._takes += 1
        if self._takes % self._SWEEP_EVERY == 0:
            self._sweep(now)
        tokens, last = self._buckets.get(key_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return None
        self._buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / self._rate

    def peek(self, key_id: str) -> float | None:
        """Like ``take`` without spending: None when a token is available."""
        now = self._clock()
        tokens, last = self._buckets.get(key_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        return None if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def remaining(self, key_id: str) -> int:
        """Whole tokens left after the last ``take`` (not refilled since)."""
        entry = self._buckets.get(key_id)
        return int(self._burst) if entry is None else int(entry[0])

    def _sweep(self, now: float) -> None:
        """Forgets buckets that have refilled completely (an attacker rotating source addresses
        must not grow the table without bound)."""
        full_after = self._burst / self._rate
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
