"""Backend health rules as pure transitions: each probe result or session event folds into the tracker.

These follow toolhive's vMCP health monitor (``pkg/vmcp/health``: ``checker.go``,
``status.go``, ``circuit_breaker.go``) rule for rule, so a backend is classified here
exactly as toolhive would classify it and the CRD status reads the same.  The
difference is the shape: toolhive keeps mutable, mutex-protected trackers inside
goroutines, while here every transition is a function from an old frozen value to a
new one.  Nothing in this module reads a clock, sleeps or does I/O -- the caller
passes ``now`` (wall time, for what the status reports) and ``mono`` (monotonic
seconds, for what the breaker measures) -- so the health actor stays a thin shell and
every rule is tested by stepping numbers.

One addition over toolhive: :func:`apply_lifecycle` lets the backend actor's session
events (connected, lost, needs auth) move the status at once instead of waiting for
the next probes to cross the unhealthy threshold.  The values they fold live beside
them: the tracker in :mod:`~vmcp_actors.health.state`, probe outcomes in
:mod:`~vmcp_actors.health.probes`, the breaker in :mod:`~vmcp_actors.health.circuit_breaker`;
the status builder (phase, messages, conditions) in :mod:`~vmcp_actors.health.status_builder`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from vmcp_actors.config.health_settings import (
    DEFAULT_BREAKER_FAILURE_THRESHOLD,
    DEFAULT_BREAKER_OPEN_TIMEOUT,
    DEFAULT_DEGRADED_THRESHOLD,
    DEFAULT_UNHEALTHY_THRESHOLD,
    CircuitBreakerConfig,
    HealthConfig,
)
from vmcp_actors.config.health_settings import DEFAULT_HEALTH_CHECK_INTERVAL as DEFAULT_CHECK_INTERVAL
from vmcp_actors.config.health_settings import DEFAULT_HEALTH_CHECK_TIMEOUT as DEFAULT_TIMEOUT
from vmcp_actors.health.circuit_breaker import CircuitBreaker
from vmcp_actors.health.probes import ErrorCategory, ProbeFailure, ProbeFailureKind, ProbeResult, short_message
from vmcp_actors.health.state import BackendHealthState, LifecycleSignal, moved_at
from vmcp_actors.model.status import BackendHealth

__all__ = [
    "DEFAULT_BREAKER_FAILURE_THRESHOLD",
    "DEFAULT_BREAKER_OPEN_TIMEOUT",
    "DEFAULT_CHECK_INTERVAL",
    "DEFAULT_DEGRADED_THRESHOLD",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UNHEALTHY_THRESHOLD",
    "CircuitBreakerConfig",
    "HealthConfig",
    "apply_lifecycle",
    "apply_probe",
    "probe_status",
    "record_failure",
    "record_revision",
    "record_success",
    "should_probe",
]


def _breaker(circuit: CircuitBreaker | None, cfg: HealthConfig, mono: float, now: datetime) -> CircuitBreaker | None:
    """The breaker to update: none while disabled, a fresh closed one on first use."""
    if not cfg.circuit_breaker.enabled:
        return None
    return circuit if circuit is not None else CircuitBreaker.closed(mono, now)


# --------------------------------------------------------------------------- transitions

_SUCCESS_STATUSES: Final = frozenset({BackendHealth.HEALTHY, BackendHealth.DEGRADED})
_FAILURE_STATUSES: Final = frozenset({BackendHealth.UNHEALTHY, BackendHealth.UNAUTHENTICATED})


def record_success(
    state: BackendHealthState | None, status: BackendHealth, now: datetime, mono: float, cfg: HealthConfig
) -> BackendHealthState:
    """A probe succeeded with ``status`` (healthy, or degraded when slow): ``RecordSuccess``.

    After any failure run the first success reports degraded ("recovering") whatever
    the probe said, so a flapping backend shows up for one interval before it counts
    as routable again.
    """
    if status not in _SUCCESS_STATUSES:
        raise ValueError(f"a successful probe is healthy or degraded, got {status}")
    if state is None:
        circuit = _breaker(None, cfg, mono, now)
        return BackendHealthState(
            status=status,
            last_transition_time=now,
            last_check_time=now,
            circuit=None if circuit is None else circuit.record_success(mono, now),
        )
    recovering = state.consecutive_failures > 0
    new_status = BackendHealth.DEGRADED if recovering else status
    circuit = _breaker(state.circuit, cfg, mono, now)
    return attrs.evolve(
        state,
        status=new_status,
        last_transition_time=moved_at(state, new_status, now),
        consecutive_failures=0,
        last_check_time=now,
        last_error_category=None,
        last_error="",
        circuit=None if circuit is None else circuit.record_success(mono, now),
        recovering_from=state.consecutive_failures if recovering else 0,
        lifecycle=None,
        observed=True,
    )


def record_failure(
    state: BackendHealthState | None,
    status: BackendHealth,
    failure: ProbeFailure,
    now: datetime,
    mono: float,
    cfg: HealthConfig,
) -> BackendHealthState:
    """A probe failed, classified as ``status`` (unhealthy or unauthenticated): ``RecordFailure``.

    Below the unhealthy threshold the previous status stands -- a healthy backend stays
    routable through a blip -- and a backend seen failing first is "unknown".  From the
    threshold on, every failure sets its own status, so an unhealthy backend that starts
    answering 401 becomes unauthenticated.
    """
    if status not in _FAILURE_STATUSES:
        raise ValueError(f"a failed probe is unhealthy or unauthenticated, got {status}")
    threshold = cfg.unhealthy_threshold
    if state is None:
        circuit = _breaker(None, cfg, mono, now)
        return BackendHealthState(
            status=status if threshold <= 1 else BackendHealth.UNKNOWN,
            last_transition_time=now,
            consecutive_failures=1,
            last_check_time=now,
            last_error_category=failure.category,
            last_error=failure.message,
            circuit=None if circuit is None else circuit.record_failure(cfg.circuit_breaker, mono, now),
        )
    failures = state.consecutive_failures + 1
    new_status = status if failures >= threshold else state.status
    circuit = _breaker(state.circuit, cfg, mono, now)
    return attrs.evolve(
        state,
        status=new_status,
        last_transition_time=moved_at(state, new_status, now),
        consecutive_failures=failures,
        last_check_time=now,
        last_error_category=failure.category,
        last_error=failure.message,
        circuit=None if circuit is None else circuit.record_failure(cfg.circuit_breaker, mono, now),
        recovering_from=0,
        lifecycle=None,
        observed=True,
    )


def probe_status(result: ProbeResult, cfg: HealthConfig) -> BackendHealth:
    """How toolhive's ``CheckHealth`` classifies one probe, before the tracker's history.

    One deliberate difference: a 401/403 is unauthenticated whether or not outgoing
    auth is configured.  toolhive reads it as healthy when the backend has outgoing auth
    (PR #4935), because its probe carries no user token and a token-exchanging backend
    rightly refuses it.  Here the probe is a ping on the backend's own session, which
    carries the configured (static) token, so a 401 means that token was rejected: the
    backend serves nothing, and calling it healthy would overwrite the truth the
    lifecycle already published (``auth_required``).
    """
    if result.failure is not None:
        if result.failure.kind is ProbeFailureKind.AUTH:
            return BackendHealth.UNAUTHENTICATED
        return BackendHealth.UNHEALTHY
    slow = cfg.degraded_threshold > 0 and result.latency > cfg.degraded_threshold
    return BackendHealth.DEGRADED if slow else BackendHealth.HEALTHY


def apply_probe(
    state: BackendHealthState | None,
    result: ProbeResult,
    now: datetime,
    mono: float,
    cfg: HealthConfig,
    has_outgoing_auth: bool,
) -> BackendHealthState:
    """Fold one probe result into the backend's state (``performHealthCheck`` after the probe).

    ``has_outgoing_auth`` is recorded on the state (toolhive's tracker keeps it too); it
    no longer changes how a 401 reads (see :func:`probe_status`).
    """
    status = probe_status(result, cfg)
    failure = result.failure
    if failure is None or status in _SUCCESS_STATUSES:
        new = record_success(state, status, now, mono, cfg)
    else:
        new = record_failure(state, status, failure, now, mono, cfg)
    return new if new.has_outgoing_auth == has_outgoing_auth else attrs.evolve(new, has_outgoing_auth=has_outgoing_auth)


def should_probe(
    state: BackendHealthState | None, cfg: HealthConfig, mono: float
) -> tuple[bool, BackendHealthState | None]:
    """Whether the breaker lets the next probe run, and the state after asking.

    While open, probes are skipped and everything else stays frozen (toolhive §3.5);
    keep the returned state, since asking may start the half-open trial.
    """
    if state is None or state.circuit is None:
        return True, state
    if not cfg.circuit_breaker.enabled:
        return True, attrs.evolve(state, circuit=None)
    allowed, circuit = state.circuit.can_attempt(cfg.circuit_breaker, mono)
    return allowed, state if circuit is state.circuit else attrs.evolve(state, circuit=circuit)


def record_revision(state: BackendHealthState, revision: str) -> BackendHealthState:
    """Store the MCP revision the client negotiated (read-model only, never a transition)."""
    return state if state.mcp_revision == revision else attrs.evolve(state, mcp_revision=revision)


# --------------------------------------------------------------------------- lifecycle

_LIFECYCLE_STATUS: Final = {
    LifecycleSignal.STARTING: BackendHealth.UNKNOWN,
    LifecycleSignal.SESSION_LOST: BackendHealth.UNHEALTHY,
    LifecycleSignal.AUTH_REQUIRED: BackendHealth.UNAUTHENTICATED,
}
_LIFECYCLE_CATEGORY: Final = {
    LifecycleSignal.SESSION_LOST: ErrorCategory.BACKEND_UNAVAILABLE,
    LifecycleSignal.AUTH_REQUIRED: ErrorCategory.AUTHENTICATION_FAILED,
}


def apply_lifecycle(
    state: BackendHealthState | None, lifecycle: LifecycleSignal, now: datetime, message: str = ""
) -> BackendHealthState:
    """Fold a session event into the state, without waiting for probes to notice.

    The rules (toolhive has no equivalent; it learns everything from probes):

    * ``STARTING``: unknown.  A backend never seen before stays unobserved, so a vMCP
      whose backends are all starting is Pending, not Failed.
    * ``SESSION_LOST``: unhealthy at once -- a backend without a session cannot take a
      request, so counting probes up to the threshold would only route traffic into it.
    * ``AUTH_REQUIRED``: unauthenticated at once.
    * ``CONNECTED``, checked in this order:
      1. no state yet: healthy;
      2. probes failed since the last success (``consecutive_failures > 0``): degraded,
         i.e. the recovering rule, exactly as if a probe had succeeded;
      3. the status was set by a lifecycle event: healthy;
      4. otherwise the status came from probes and stands (a slow backend stays degraded).

    Lifecycle events neither count as probe failures nor touch the breaker, which gates
    probes only; ``last_check_time`` is left alone because no health check ran.
    ``message`` is kept as the last error of ``SESSION_LOST`` and ``AUTH_REQUIRED``;
    ``STARTING`` keeps the previous last error (the failure being retried), so a
    reconnecting backend's status still says why it is down.
    """
    lifecycle = LifecycleSignal(lifecycle)
    text = short_message(message)
    if lifecycle is LifecycleSignal.CONNECTED:
        return _connected(state, now)
    status = _LIFECYCLE_STATUS[lifecycle]
    category = _LIFECYCLE_CATEGORY.get(lifecycle)
    # Starting again, the reason of the failure being retried still explains the wait.
    previous = "" if state is None else state.last_error
    error = text if category is not None else previous
    if state is None:
        return BackendHealthState(
            status=status,
            last_transition_time=now,
            last_error_category=category,
            last_error=error,
            lifecycle=lifecycle,
            observed=lifecycle is not LifecycleSignal.STARTING,
        )
    return attrs.evolve(
        state,
        status=status,
        last_transition_time=moved_at(state, status, now),
        last_error_category=category,
        last_error=error,
        recovering_from=0,
        lifecycle=lifecycle,
        observed=state.observed or lifecycle is not LifecycleSignal.STARTING,
    )


def _connected(state: BackendHealthState | None, now: datetime) -> BackendHealthState:
    if state is None:
        return BackendHealthState(status=BackendHealth.HEALTHY, last_transition_time=now)
    if state.consecutive_failures > 0:
        status, recovering_from = BackendHealth.DEGRADED, state.consecutive_failures
    elif state.lifecycle is not None:
        status, recovering_from = BackendHealth.HEALTHY, 0
    else:
        status, recovering_from = state.status, state.recovering_from
    return attrs.evolve(
        state,
        status=status,
        last_transition_time=moved_at(state, status, now),
        consecutive_failures=0,
        last_error_category=None,
        last_error="",
        recovering_from=recovering_from,
        lifecycle=None,
        observed=True,
    )
