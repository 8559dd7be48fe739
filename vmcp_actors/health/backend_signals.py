"""What the backend stage reports, in the health rules' vocabulary.

Backends speak in lifecycle states and ping outcomes classified by
:class:`~vmcp_actors.backend.failures.FailureKind`; the health rules (toolhive's) know
only :class:`~vmcp_actors.health.state.LifecycleSignal` and
:class:`~vmcp_actors.health.probes.ProbeResult`.  The translation is kept apart from the
health actor so that it is pure, tested on its own, and shared with the metrics, whose
probe ``outcome`` label must read exactly as the health rules read the probe.
"""

from __future__ import annotations

from typing import Final, Protocol

from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.health.probes import ProbeFailureKind, ProbeResult
from vmcp_actors.health.state import LifecycleSignal

__all__ = ["PingOutcome", "lifecycle_signal", "probe_result"]


class PingOutcome(Protocol):
    """What :func:`probe_result` reads of a :class:`~vmcp_actors.backend.messages.ProbeOutcome`.

    A protocol, not the message class: the messages module reaches the actor toolkit,
    and this translation must stay importable without it.
    """

    @property
    def ok(self) -> bool:
        """Whether the ping was answered."""

    @property
    def latency(self) -> float | None:
        """How long the ping took, if it ran."""

    @property
    def failure(self) -> Failure | None:
        """Why the ping failed, if it ran and failed."""

    @property
    def skipped(self) -> str:
        """Why no ping was sent (empty if one was)."""


def lifecycle_signal(state: State) -> LifecycleSignal | None:
    """How a lifecycle state reads for health: ``None`` means it says nothing new."""
    if state is State.STARTING:
        return LifecycleSignal.STARTING
    if state.active:
        return LifecycleSignal.CONNECTED
    if state is State.AUTH_REQUIRED:
        return LifecycleSignal.AUTH_REQUIRED
    if state.session_gone or state is State.STOPPING:
        return LifecycleSignal.SESSION_LOST
    return None


_PROBE_KIND: Final = {
    FailureKind.AUTH_REQUIRED: ProbeFailureKind.AUTH,
    FailureKind.TIMEOUT: ProbeFailureKind.TIMEOUT,
    FailureKind.TRANSIENT: ProbeFailureKind.CONNECTION,
    FailureKind.SESSION_LOST: ProbeFailureKind.CONNECTION,
}


def probe_result(outcome: PingOutcome) -> ProbeResult:
    """Translate a backend's ping outcome into the health rules' vocabulary."""
    if outcome.ok:
        return ProbeResult.success(outcome.latency or 0.0)
    failure = outcome.failure or Failure(FailureKind.SESSION_LOST, outcome.skipped or "probe could not run")
    kind = _PROBE_KIND.get(failure.kind, ProbeFailureKind.OTHER)
    if failure.http_status in (401, 403):
        kind = ProbeFailureKind.AUTH
    return ProbeResult.failed(kind, failure.message, outcome.latency or 0.0)
