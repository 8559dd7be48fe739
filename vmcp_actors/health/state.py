"""One backend's health as a frozen value (toolhive ``backendHealthState``), and the session signals.

The transitions that produce these values live in :mod:`vmcp_actors.health.rules`; the
status builder reads them.  Keeping the value apart lets both depend on it without
depending on each other.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from vmcp_actors.config.fields import check_aware, check_count
from vmcp_actors.errors import ValidationError
from vmcp_actors.health.circuit_breaker import CircuitBreaker
from vmcp_actors.health.probes import ErrorCategory
from vmcp_actors.model.status import BackendHealth, CircuitState

__all__ = ["BackendHealthState", "LifecycleSignal", "moved_at"]


class LifecycleSignal(enum.StrEnum):
    """Session events from the backend actor that move the health status without a probe.

    ``SESSION_LOST`` covers every lifecycle state in which no session exists any more:
    failed, unreachable, stopped and disconnected.
    """

    STARTING = "starting"
    CONNECTED = "connected"
    SESSION_LOST = "session_lost"
    AUTH_REQUIRED = "auth_required"


def _to_health(value: object) -> BackendHealth:
    try:
        return BackendHealth(str(value))
    except ValueError:
        raise ValidationError("backendHealth.status", f"must be a BackendHealth, got {value!r}", value) from None


@attrs.frozen
class BackendHealthState:
    """Everything known about one backend's health (toolhive ``backendHealthState``/``State``).

    Fields beyond toolhive's:

    * ``lifecycle``: the session event that last set ``status``; ``None`` once a probe
      result has spoken since.  It lets ``CONNECTED`` undo a status that only a lifecycle
      event caused, without overriding what probes found.
    * ``observed``: ``False`` only for a backend that has merely been announced as
      starting; the status builder treats it like a backend without data (Pending).
    * ``recovering_from``: the failure run the last recovering success ended, so the
      "Recovering from N failures" message is reachable (toolhive zeroes the count first).
    """

    status: BackendHealth = attrs.field(converter=_to_health)
    last_transition_time: datetime
    consecutive_failures: int = 0
    last_check_time: datetime | None = None
    last_error_category: ErrorCategory | None = None
    last_error: str = ""
    circuit: CircuitBreaker | None = None
    mcp_revision: str = ""
    has_outgoing_auth: bool = False
    recovering_from: int = 0
    lifecycle: LifecycleSignal | None = None
    observed: bool = True

    def __attrs_post_init__(self) -> None:
        check_aware("backendHealth.lastTransitionTime", self.last_transition_time)
        check_aware("backendHealth.lastCheckTime", self.last_check_time)
        check_count("backendHealth.consecutiveFailures", self.consecutive_failures, 0)
        check_count("backendHealth.recoveringFrom", self.recovering_from, 0)

    @property
    def circuit_state(self) -> CircuitState:
        """The reported breaker state; a disabled breaker reads "closed" like toolhive's."""
        return CircuitState.CLOSED if self.circuit is None else self.circuit.state

    @property
    def circuit_last_changed(self) -> datetime | None:
        """When the breaker last changed state; ``None`` (JSON null) while disabled."""
        return None if self.circuit is None else self.circuit.changed_at


def moved_at(state: BackendHealthState, status: BackendHealth, now: datetime) -> datetime:
    """The ``lastTransitionTime`` after moving to ``status``: it moves only when the status changes."""
    return state.last_transition_time if state.status is status else now
