"""Backend health rules as pure values: configuration, probe outcomes, circuit breaker, tracker.

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
the next probes to cross the unhealthy threshold.  The status builder (phase,
messages, conditions) lives in :mod:`vmcp_actors.health.status_builder`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final

import attrs

from vmcp_actors.config.fields import check_count as _check_count
from vmcp_actors.config.fields import check_seconds as _check_duration
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
from vmcp_actors.errors import ValidationError
from vmcp_actors.model.status import BackendHealth, CircuitState

__all__ = [
    "DEFAULT_BREAKER_FAILURE_THRESHOLD",
    "DEFAULT_BREAKER_OPEN_TIMEOUT",
    "DEFAULT_CHECK_INTERVAL",
    "DEFAULT_DEGRADED_THRESHOLD",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UNHEALTHY_THRESHOLD",
    "BackendHealthState",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "ErrorCategory",
    "HealthConfig",
    "LifecycleSignal",
    "ProbeFailure",
    "ProbeFailureKind",
    "ProbeResult",
    "apply_lifecycle",
    "apply_probe",
    "probe_status",
    "record_failure",
    "record_revision",
    "record_success",
    "should_probe",
]

#: Probe failure messages are shown in logs and the health API; cap them so a backend
#: cannot flood either with a megabyte of HTML error page.
MAX_FAILURE_MESSAGE: Final = 200


# --------------------------------------------------------------------------- config


def _check_aware(field: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError(field, "must be a timezone-aware datetime", value)


# --------------------------------------------------------------------------- probe outcomes


class ProbeFailureKind(enum.StrEnum):
    """Why a probe failed, in the only terms the health rules distinguish."""

    AUTH = "auth"  # HTTP 401/403 or an MCP auth error
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    OTHER = "other"


class ErrorCategory(enum.StrEnum):
    """toolhive's sanitized error categories (``sanitizeError``) and their status texts.

    Status messages show only the category, never the error text, because error texts
    carry URLs, paths and sometimes credentials.
    """

    AUTHENTICATION_FAILED = "authentication_failed"
    TIMEOUT = "timeout"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    CONNECTION_FAILED = "connection_failed"
    HEALTH_CHECK_FAILED = "health_check_failed"

    @property
    def text(self) -> str:
        """The wording ``categorizeErrorForMessage`` uses in ``discoveredBackends[].message``."""
        return _CATEGORY_TEXT[self]


_CATEGORY_TEXT: Final = {
    ErrorCategory.AUTHENTICATION_FAILED: "Authentication failed",
    ErrorCategory.TIMEOUT: "Health check timed out",
    ErrorCategory.BACKEND_UNAVAILABLE: "Backend unavailable",
    ErrorCategory.CONNECTION_FAILED: "Connection failed",
    ErrorCategory.HEALTH_CHECK_FAILED: "Health check failed",
}

_KIND_CATEGORY: Final = {
    ProbeFailureKind.AUTH: ErrorCategory.AUTHENTICATION_FAILED,
    ProbeFailureKind.TIMEOUT: ErrorCategory.TIMEOUT,
    ProbeFailureKind.CONNECTION: ErrorCategory.CONNECTION_FAILED,
    ProbeFailureKind.OTHER: ErrorCategory.HEALTH_CHECK_FAILED,
}


def _to_kind(value: object) -> ProbeFailureKind:
    try:
        return ProbeFailureKind(str(value))
    except ValueError:
        allowed = ", ".join(kind.value for kind in ProbeFailureKind)
        raise ValidationError("probeFailure.kind", f"must be one of {allowed}, got {value!r}", value) from None


def _short_message(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("probeFailure.message", f"must be a string, got {type(value).__name__}", value)
    # One line, bounded: it ends up in log lines and the health API.
    text = " ".join(value.split())
    return text if len(text) <= MAX_FAILURE_MESSAGE else text[: MAX_FAILURE_MESSAGE - 1] + "…"


@attrs.frozen
class ProbeFailure:
    """A failed probe's kind and a short message the caller has already stripped of secrets."""

    kind: ProbeFailureKind = attrs.field(converter=_to_kind)
    message: str = attrs.field(default="", converter=_short_message)

    @property
    def category(self) -> ErrorCategory:
        return _KIND_CATEGORY[self.kind]


@attrs.frozen
class ProbeResult:
    """What one health probe (initialize + list capabilities) came back with.

    ``latency`` is measured by the caller on the monotonic clock; it decides "slow".
    """

    ok: bool
    latency: float = 0.0
    failure: ProbeFailure | None = None

    def __attrs_post_init__(self) -> None:
        latency = _check_duration("probeResult.latency", self.latency)
        if latency < 0:
            raise ValidationError("probeResult.latency", f"must be >= 0, got {latency}", latency)
        object.__setattr__(self, "latency", latency)
        if self.ok != (self.failure is None):
            raise ValidationError("probeResult.failure", "must be set exactly when ok is False", self.failure)

    @classmethod
    def success(cls, latency: float = 0.0) -> ProbeResult:
        return cls(ok=True, latency=latency)

    @classmethod
    def failed(cls, kind: ProbeFailureKind | str, message: str = "", latency: float = 0.0) -> ProbeResult:
        return cls(ok=False, latency=latency, failure=ProbeFailure(kind, message))


# --------------------------------------------------------------------------- circuit breaker


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
        _check_count("circuitBreaker.failureCount", self.failure_count, 0)
        _check_aware("circuitBreaker.changedAt", self.changed_at)

    @classmethod
    def closed(cls, mono: float, now: datetime) -> CircuitBreaker:
        return cls(changed_mono=mono, changed_at=now)

    def _to(self, state: CircuitState, mono: float, now: datetime) -> CircuitBreaker:
        return attrs.evolve(self, state=state, changed_mono=mono, changed_at=now)

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
            half_open = self._to(CircuitState.HALF_OPEN, mono, self.changed_at + timedelta(seconds=elapsed))
            return True, attrs.evolve(half_open, half_open_test_in_progress=True)
        if self.half_open_test_in_progress:
            return False, self
        return True, attrs.evolve(self, half_open_test_in_progress=True)

    def record_success(self, mono: float, now: datetime) -> CircuitBreaker:
        """Any success closes the breaker and forgets its failures (``RecordSuccess``)."""
        cleared = attrs.evolve(self, failure_count=0, half_open_test_in_progress=False)
        return cleared if self.state is CircuitState.CLOSED else cleared._to(CircuitState.CLOSED, mono, now)

    def record_failure(self, cfg: CircuitBreakerConfig, mono: float, now: datetime) -> CircuitBreaker:
        """Count a failure; trip when closed at the threshold, re-open after a failed trial."""
        counted = attrs.evolve(self, failure_count=self.failure_count + 1, half_open_test_in_progress=False)
        if self.state is CircuitState.CLOSED and counted.failure_count >= cfg.failure_threshold:
            return counted._to(CircuitState.OPEN, mono, now)
        if self.state is CircuitState.HALF_OPEN:
            return counted._to(CircuitState.OPEN, mono, now)
        return counted


def _breaker(circuit: CircuitBreaker | None, cfg: HealthConfig, mono: float, now: datetime) -> CircuitBreaker | None:
    """The breaker to update: none while disabled, a fresh closed one on first use."""
    if not cfg.circuit_breaker.enabled:
        return None
    return circuit if circuit is not None else CircuitBreaker.closed(mono, now)


# --------------------------------------------------------------------------- tracker state


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
        _check_aware("backendHealth.lastTransitionTime", self.last_transition_time)
        _check_aware("backendHealth.lastCheckTime", self.last_check_time)
        _check_count("backendHealth.consecutiveFailures", self.consecutive_failures, 0)
        _check_count("backendHealth.recoveringFrom", self.recovering_from, 0)

    @property
    def circuit_state(self) -> CircuitState:
        """The reported breaker state; a disabled breaker reads "closed" like toolhive's."""
        return CircuitState.CLOSED if self.circuit is None else self.circuit.state

    @property
    def circuit_last_changed(self) -> datetime | None:
        """When the breaker last changed state; ``None`` (JSON null) while disabled."""
        return None if self.circuit is None else self.circuit.changed_at


def _moved(state: BackendHealthState, status: BackendHealth, now: datetime) -> datetime:
    """``lastTransitionTime`` moves only when the status actually changes."""
    return state.last_transition_time if state.status is status else now


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
        last_transition_time=_moved(state, new_status, now),
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
        last_transition_time=_moved(state, new_status, now),
        consecutive_failures=failures,
        last_check_time=now,
        last_error_category=failure.category,
        last_error=failure.message,
        circuit=None if circuit is None else circuit.record_failure(cfg.circuit_breaker, mono, now),
        recovering_from=0,
        lifecycle=None,
        observed=True,
    )


def probe_status(result: ProbeResult, cfg: HealthConfig, has_outgoing_auth: bool) -> BackendHealth:
    """How toolhive's ``CheckHealth`` classifies one probe, before the tracker's history.

    A 401/403 from a backend we do send credentials to means the probe reached a live
    server that merely rejected the probe's (absent) user token: healthy (PR #4935).
    Without outgoing auth it is a misconfiguration: unauthenticated.
    """
    if result.failure is not None:
        if result.failure.kind is ProbeFailureKind.AUTH:
            return BackendHealth.HEALTHY if has_outgoing_auth else BackendHealth.UNAUTHENTICATED
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
    """Fold one probe result into the backend's state (``performHealthCheck`` after the probe)."""
    status = probe_status(result, cfg, has_outgoing_auth)
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
    ``message`` is kept as the last error of ``SESSION_LOST`` and ``AUTH_REQUIRED``.
    """
    lifecycle = LifecycleSignal(lifecycle)
    text = _short_message(message)
    if lifecycle is LifecycleSignal.CONNECTED:
        return _connected(state, now)
    status = _LIFECYCLE_STATUS[lifecycle]
    category = _LIFECYCLE_CATEGORY.get(lifecycle)
    error = text if category is not None else ""
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
        last_transition_time=_moved(state, status, now),
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
        last_transition_time=_moved(state, status, now),
        consecutive_failures=0,
        last_error_category=None,
        last_error="",
        recovering_from=recovering_from,
        lifecycle=None,
        observed=True,
    )
