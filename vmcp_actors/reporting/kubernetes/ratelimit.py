"""A client-side token bucket, as client-go puts in front of every API request.

client-go's ``rest.Config`` defaults to 5 requests per second with a burst of 10
(``flowcontrol.NewTokenBucketRateLimiter``); a runtime that writes its status through
the official Python client has no such limiter unless it brings one, so a status storm
would become a request storm on the API server.  This is that limiter.

It is a pure object over an injected :class:`~vmcp_actors.actorkit.timers.Clock`: :meth:`reserve`
takes a token and says how long the caller must wait for it, without sleeping itself.
Waiting is the caller's business (:meth:`TokenBucket.wait` takes the sleep function), so
tests drive it with a manual clock and check its guarantees exactly instead of timing
real sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from vmcp_actors.actorkit.timers import Clock, SystemClock
from vmcp_actors.errors import ValidationError

__all__ = ["DEFAULT_BURST", "DEFAULT_QPS", "TokenBucket"]

#: client-go ``rest.DefaultQPS``.
DEFAULT_QPS: Final = 5.0
#: client-go ``rest.DefaultBurst``.
DEFAULT_BURST: Final = 10


class TokenBucket:
    """``burst`` tokens, refilled at ``qps`` per second; ``qps <= 0`` disables limiting.

    Tokens are handed out in order: a caller that finds the bucket empty reserves the next
    token to be refilled (the count goes negative) and is told when it becomes due, like
    Go's ``rate.Limiter.Reserve``.  The guarantee, for any sequence of calls: within any
    interval of length ``d``, at most ``burst + qps * d`` reserved tokens fall due.

    Thread-safe; the clock must never go backwards (a monotonic clock).
    """

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, clock: Clock | None = None) -> None:
        if qps != qps or qps == float("inf"):  # NaN or infinity: neither is a rate
            raise ValidationError("qps", f"must be a finite number (<= 0 disables the limiter), got {qps}", qps)
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise ValidationError("burst", f"must be an integer, got {type(burst).__name__}", burst)
        if qps > 0 and burst < 1:
            raise ValidationError("burst", f"must be >= 1 when the limiter is enabled, got {burst}", burst)
        self.qps = float(qps)
        self.burst = burst
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.qps > 0

    def _refill(self, now: float) -> None:
        elapsed = max(now - self._last, 0.0)
        self._last = max(now, self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)

    def available(self) -> float:
        """Tokens in the bucket now; negative when tokens are reserved ahead."""
        if not self.enabled:
            return float("inf")
        with self._lock:
            self._refill(self._clock.monotonic())
            return self._tokens

    def ready_in(self) -> float:
        """Seconds until a token is there (0 now), without taking one."""
        if not self.enabled:
            return 0.0
        with self._lock:
            self._refill(self._clock.monotonic())
            return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.qps

    def reserve(self) -> float:
        """Take one token; return the seconds until it is due (0 if it is there now)."""
        if not self.enabled:
            return 0.0
        with self._lock:
            self._refill(self._clock.monotonic())
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.qps

    def try_take(self) -> bool:
        """Take a token only if one is there now; never reserves ahead."""
        if not self.enabled:
            return True
        with self._lock:
            self._refill(self._clock.monotonic())
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take a token, sleeping with ``sleep`` until it is due; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            sleep(delay)
        return delay
