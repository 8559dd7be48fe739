"""Capped exponential backoff with bounded jitter, as a pure function.

One definition serves the reporter's sink retries and the backends' reconnects, so the
numbers live in one place.  Jitter is *added* (``U[0, jitter) * delay``, like
client-go's ``wait.Backoff``) and then the cap is applied: the delay never exceeds the
cap, never falls below the un-jittered delay, and is monotone in the attempt number for
any draw as long as ``jitter <= factor - 1`` -- properties the tests check.
"""

from __future__ import annotations

import attrs

from vmcp_actors.errors import ValidationError


@attrs.frozen
class Backoff:
    """``min(initial * factor**(attempt-1) * (1 + jitter*u), maximum)`` for attempt >= 1."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.1

    def __attrs_post_init__(self) -> None:
        if not self.initial > 0:
            raise ValidationError("backoff.initial", f"must be > 0, got {self.initial}", self.initial)
        if not self.maximum >= self.initial:
            raise ValidationError(
                "backoff.maximum", f"must be >= initial ({self.initial}), got {self.maximum}", self.maximum
            )
        if not self.factor >= 1:
            raise ValidationError("backoff.factor", f"must be >= 1, got {self.factor}", self.factor)
        if not 0 <= self.jitter <= max(self.factor - 1, 0):
            raise ValidationError(
                "backoff.jitter",
                f"must be between 0 and factor-1 ({self.factor - 1}) to keep delays monotone, got {self.jitter}",
                self.jitter,
            )

    def base_delay(self, attempt: int) -> float:
        """The un-jittered, capped delay after ``attempt`` consecutive failures."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        delay = self.initial
        for _ in range(attempt - 1):
            delay *= self.factor
            if delay >= self.maximum:
                return self.maximum
        return min(delay, self.maximum)

    def delay(self, attempt: int, draw: float) -> float:
        """The delay after ``attempt`` failures, for a uniform ``draw`` in ``[0, 1)``."""
        if not 0 <= draw < 1:
            raise ValueError(f"draw must be in [0, 1), got {draw}")
        return min(self.base_delay(attempt) * (1 + self.jitter * draw), self.maximum)
