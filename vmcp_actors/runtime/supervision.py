"""The supervisor's decisions as pure functions: the restart budget, the rebuilt lifecycle, the probe timeout.

When a backend actor dies, the supervisor decides whether to rebuild it (within a
restart budget, after a backoff) or to give up and mark the backend failed, and what
lifecycle the replacement starts from.  Those decisions live here, over plain values,
so they are tested without threads; :class:`~vmcp_actors.runtime.supervisor.Supervisor`
performs what they return.

It is also where the one owner of the probe timeout is applied: the user's
``failureHandling.healthCheckTimeout``, whatever lifecycle policy an embedder passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, LifecyclePolicy, State
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.errors import ValidationError
from vmcp_actors.health.probe_schedule import probe_timeout

__all__ = [
    "DEFAULT_RESTART_POLICY",
    "GiveUp",
    "RestartAfter",
    "RestartPolicy",
    "backend_policy",
    "decide_restart",
    "failed_lifecycle",
    "rebuilt_lifecycle",
]


@attrs.frozen
class RestartPolicy:
    """At most ``max_restarts`` within ``window`` seconds, spaced by ``backoff``."""

    max_restarts: int = 5
    window: float = 60.0
    backoff: Backoff = attrs.field(factory=lambda: Backoff(initial=0.1, maximum=5.0, factor=2.0, jitter=0.2))

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ValidationError("restartPolicy.maxRestarts", "must be an integer >= 0", self.max_restarts)
        if not self.window > 0:
            raise ValidationError("restartPolicy.window", f"must be > 0 seconds, got {self.window}", self.window)


DEFAULT_RESTART_POLICY: Final = RestartPolicy()


@attrs.frozen
class RestartAfter:
    """Rebuild the actor after ``delay`` seconds; ``restarts`` is the budget spent, this one included."""

    delay: float
    restarts: tuple[float, ...]

    @property
    def count(self) -> int:
        """Which restart within the window this is (1 for the first)."""
        return len(self.restarts)


@attrs.frozen
class GiveUp:
    """Do not rebuild the actor again: the backend is failed, for ``reason``."""

    restarts: tuple[float, ...]
    reason: str


def decide_restart(
    restarts: Sequence[float], now: float, policy: RestartPolicy, draw: float, error: str
) -> RestartAfter | GiveUp:
    """What to do about a backend actor that crashed at ``now`` (monotonic seconds).

    ``restarts`` are the times of its earlier restarts; only those within the policy's
    window count against the budget.  ``draw`` (uniform in ``[0, 1)``) jitters the
    backoff, whose attempt number is the restart's number within the window.
    """
    recent = tuple(t for t in restarts if now - t < policy.window)
    if len(recent) >= policy.max_restarts:
        reason = (
            f"backend actor crashed {len(recent) + 1} times within {policy.window:g} s; "
            f"not restarted again (last error: {error})"
        )
        return GiveUp(recent, reason)
    return RestartAfter(policy.backoff.delay(len(recent) + 1, draw), (*recent, now))


def rebuilt_lifecycle(old: Lifecycle, remote: bool) -> Lifecycle:
    """The lifecycle a rebuilt backend actor starts from: the dead one's counters and intent, no session.

    The dead actor's connections were released, so the replacement starts "not
    connected"; it keeps the attempt number (so late results of the dead attempts stay
    stale), the failure counters and the last error, and moves the timer token past
    every timer the dead actor may have left scheduled.  Whether it should be running
    is ``old.want_running``: the caller starts it if so.
    """
    return Lifecycle(
        name=old.name,
        remote=remote,
        attempt=old.attempt,
        consecutive_failures=old.consecutive_failures,
        transient_failures=old.transient_failures,
        last_attempt_at=old.last_attempt_at,
        last_error=old.last_error,
        tool_names=old.tool_names,
        timer_token=old.timer_token + 1,
    )


def failed_lifecycle(old: Lifecycle, reason: str) -> Lifecycle:
    """What is true of a backend whose actor is not restarted again: failed, unhealthy, for ``reason``.

    The dead actor's last snapshot may still say "running"; this replaces it.
    """
    return attrs.evolve(
        old, state=State.FAILED, health=Health.UNHEALTHY, last_error=Failure(FailureKind.PROTOCOL, reason)
    )


def backend_policy(policy: LifecyclePolicy | None, health: HealthConfig) -> LifecyclePolicy:
    """The lifecycle policy backend actors run with: ``policy``'s numbers, health's probe timeout.

    ``failureHandling.healthCheckTimeout`` is the one owner of the probe timeout: an
    embedder's (or the CLI's) policy tunes reconnects, never how long a probe may take.
    """
    return attrs.evolve(policy or LifecyclePolicy(), probe_timeout=probe_timeout(health.timeout))
