"""One backend's circuit breaker (toolhive ``circuitBreaker``), as a frozen value.

The breaker gates health probes only: while it is open, probes are skipped and the
backend's health state stays frozen until the open timeout has passed, then a single
half-open trial probe decides.  Every method returns the next value; nothing here reads
a clock -- the caller passes ``mono`` (monotonic seconds, which measure the timeout) and
``now`` (the wall time ``circuitLastChanged`` reports).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from vmcp_actors.config.fields import check_aware, check_count
from vmcp_actors.model.status import CircuitState

if TYPE_CHECKING:
    from vmcp_actors.config.health_settings import CircuitBreakerConfig

__all__ = ["CircuitBreaker"]


@attrs.frozen
class CircuitBreaker:
    """One backend's breaker (toolhive ``circuitBreaker``), gating health probes only.

    The state change is stamped twice: ``changed_mono`` measures the open timeout (wall
    time can jump), ``changed_at`` is what ``circuitLastChanged`` reports.  Each method
    returns the next value; ``self`` is never modified.
    """

    changed_mono: float
    changed_at: datetime
    state: CircuitState = CircuitState.CLOSED
    failure_count: int = 0
    half_open_test_in_progress: bool = False

    def __attrs_post_init__(self) -> None:
        check_count("circuitBreaker.failureCount", self.failure_count, 0)
        check_aware("circuitBreaker.changedAt", self.changed_at)

    @classmethod
    def closed(cls, mono: float, now: datetime) -> CircuitBreaker:
        """A fresh breaker, closed since ``now``."""
        return cls(changed_mono=mono, changed_at=now)

    def can_attempt(self, cfg: CircuitBreakerConfig, mono: float) -> tuple[bool, CircuitBreaker]:
        """Whether a probe may run now, and the breaker after asking (``CanAttempt``).

        Asking is not free: an expired open breaker moves to half-open and reserves the
        single trial probe, so the caller must keep the returned value.  The wall stamp
        of that transition is derived from the monotonic delta, so no wall clock is read.
        """
        if self.state is CircuitState.CLOSED:
            return True, self
        if self.state is CircuitState.OPEN:
            elapsed = mono - self.changed_mono
            if elapsed < cfg.open_timeout:
                return False, self
            half_open = _to(self, CircuitState.HALF_OPEN, mono, self.changed_at + timedelta(seconds=elapsed))
            return True, attrs.evolve(half_open, half_open_test_in_progress=True)
        if self.half_open_test_in_progress:
            return False, self
        return True, attrs.evolve(self, half_open_test_in_progress=True)

    def record_success(self, mono: float, now: datetime) -> CircuitBreaker:
        """Any success closes the breaker and forgets its failures (``RecordSuccess``)."""
        cleared = attrs.evolve(self, failure_count=0, half_open_test_in_progress=False)
        return cleared if self.state is CircuitState.CLOSED else _to(cleared, CircuitState.CLOSED, mono, now)

    def record_failure(self, cfg: CircuitBreakerConfig, mono: float, now: datetime) -> CircuitBreaker:
        """Count a failure; trip when closed at the threshold, re-open after a failed trial."""
        counted = attrs.evolve(self, failure_count=self.failure_count + 1, half_open_test_in_progress=False)
        if self.state is CircuitState.CLOSED and counted.failure_count >= cfg.failure_threshold:
            return _to(counted, CircuitState.OPEN, mono, now)
        if self.state is CircuitState.HALF_OPEN:
            return _to(counted, CircuitState.OPEN, mono, now)
        return counted


def _to(breaker: CircuitBreaker, state: CircuitState, mono: float, now: datetime) -> CircuitBreaker:
    """``breaker`` moved to ``state``, stamped on both clocks."""
    return attrs.evolve(breaker, state=state, changed_mono=mono, changed_at=now)
