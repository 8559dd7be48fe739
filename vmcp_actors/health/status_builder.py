"""From per-backend health to the vMCP :class:`~vmcp_actors.model.status.Status`: phase, messages, conditions.

A pure port of toolhive's ``Monitor.BuildStatus`` (``pkg/vmcp/health/monitor.go``):
``determinePhase``, ``formatStatusMessage``, ``buildConditions`` and
``convertToDiscoveredBackends`` with the same order of rules and the same message
texts, because operators alert on the ``Ready`` condition and its reason, and users
read the messages.  Five deliberate differences, each because toolhive's behaviour
there is an accident or a stop-gap rather than a contract:

* ``discoveredBackends`` is sorted by name (toolhive iterates a Go map), so two
  builds from the same state are equal and the reporter can skip the write;
* a condition keeps its previous ``lastTransitionTime`` unless its status flipped
  (toolhive stamps ``now`` on every build and relies on the K8s reporter to fix it);
* a recovering backend's message says "Recovering from N failures" (toolhive zeroes
  the count before formatting, so that text is unreachable there);
* an unauthenticated backend is **not** routable: it serves nothing (0 tools).  toolhive
  counts it as routable only as a stop-gap its TODO #4920 says will be reverted; here a
  wrong or missing token makes the phase Degraded or Failed, never Ready;
* ``discoveredBackends[].message`` carries the reason after the category ("Backend
  unavailable: process exited with code 1"): toolhive shows the category only, which
  left operators guessing.  The reason is the backend's failure message, which the
  backend stage builds without credentials (URLs redacted, known secrets scrubbed), and
  is capped at :data:`~vmcp_actors.health.probes.MAX_FAILURE_MESSAGE` characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from vmcp_actors.health.state import BackendHealthState, LifecycleSignal
from vmcp_actors.model.conditions import (
    CONDITION_BACKENDS_DISCOVERED,
    CONDITION_DEGRADED,
    CONDITION_READY,
    REASON_ALL_BACKENDS_ROUTABLE,
    REASON_BACKENDS_DEGRADED,
    REASON_BACKENDS_DISCOVERED,
    REASON_BACKENDS_PENDING,
    REASON_NO_ROUTABLE_BACKENDS,
    REASON_SOME_BACKENDS_UNHEALTHY,
)
from vmcp_actors.model.status import (
    BackendHealth,
    CircuitState,
    Condition,
    ConditionStatus,
    DiscoveredBackend,
    Phase,
    Status,
)

__all__ = [
    "BackendView",
    "HealthSummary",
    "build_conditions",
    "build_status",
    "determine_phase",
    "discovered_backend",
    "format_backend_message",
    "format_status_message",
    "summarize",
]

_CIRCUIT_PREFIX: Final = {
    CircuitState.OPEN: "Circuit breaker OPEN - ",
    CircuitState.HALF_OPEN: "Circuit breaker testing recovery - ",
}
_STATUS_TEXT: Final = {
    BackendHealth.HEALTHY: "Healthy",
    BackendHealth.UNHEALTHY: "Unhealthy",
    BackendHealth.UNAUTHENTICATED: "Authentication misconfigured (backend requires auth, none configured)",
    BackendHealth.UNKNOWN: "Unknown",
}


@attrs.frozen
class BackendView:
    """What the status needs to know about one configured backend.

    ``state`` is ``None`` until the backend has health data; such a backend counts as
    configured but is left out of the totals and of ``discoveredBackends``, as in toolhive.
    """

    name: str
    url: str = ""
    auth_config_ref: str = ""
    auth_type: str = ""
    state: BackendHealthState | None = None


@attrs.frozen
class HealthSummary:
    """Counts per status over the backends with data (toolhive ``Summary``)."""

    total: int = 0
    healthy: int = 0
    degraded: int = 0
    unhealthy: int = 0
    unknown: int = 0
    unauthenticated: int = 0

    @property
    def routable(self) -> int:
        """Healthy backends only: an unauthenticated one serves nothing (toolhive's #4920 stop-gap is not copied)."""
        return self.healthy


def summarize(states: Iterable[BackendHealthState]) -> HealthSummary:
    """Count the observed states by status (``computeSummary``)."""
    counts = dict.fromkeys(BackendHealth, 0)
    for state in states:
        if state.observed:
            counts[state.status] += 1
    return HealthSummary(
        total=sum(counts.values()),
        healthy=counts[BackendHealth.HEALTHY],
        degraded=counts[BackendHealth.DEGRADED],
        unhealthy=counts[BackendHealth.UNHEALTHY],
        unknown=counts[BackendHealth.UNKNOWN],
        unauthenticated=counts[BackendHealth.UNAUTHENTICATED],
    )


def determine_phase(summary: HealthSummary, configured: int) -> Phase:
    """The phase, by toolhive's rules in toolhive's order.

    Degraded and unknown backends are not routable, so a lone slow backend makes the
    vMCP Failed, and so do backends that are all unknown -- that is upstream's rule.
    """
    if summary.total == 0:
        return Phase.READY if configured == 0 else Phase.PENDING
    if summary.routable == summary.total:
        return Phase.READY
    if summary.routable == 0:
        return Phase.FAILED
    return Phase.DEGRADED


def _backends(n: int) -> str:
    return "backend" if n == 1 else "backends"


def _ready_text(summary: HealthSummary, healthy_verb: str) -> str:
    """The Ready wording shared by the status message and the Ready condition (every backend healthy)."""
    return f"All {summary.healthy} {_backends(summary.healthy)}{healthy_verb} healthy"


def _details(summary: HealthSummary) -> str:
    """The per-status counts of toolhive's message; unauthenticated ones are named only when there are some."""
    details = f"{summary.degraded} degraded, {summary.unhealthy} unhealthy, {summary.unknown} unknown"
    if summary.unauthenticated:
        details += f", {summary.unauthenticated} unauthenticated"
    return details


def format_status_message(summary: HealthSummary, phase: Phase, configured: int) -> str:
    """``status.message`` (``formatStatusMessage``), pluralised exactly as upstream."""
    if summary.total == 0:
        if configured == 0:
            return "Ready, no backends configured"
        return f"Waiting for initial health checks ({configured} backends configured)"
    if phase is Phase.READY:
        return _ready_text(summary, "")
    details = _details(summary)
    if phase is Phase.FAILED:
        return f"No routable backends ({details})"
    return f"{summary.routable}/{summary.total} backends routable ({details})"


def _condition(
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    previous: Status | None,
) -> Condition:
    before = None if previous is None else previous.condition(condition_type)
    since = before.last_transition_time if before is not None and before.status is status else now
    return Condition(condition_type, status, reason, message, last_transition_time=since)


def build_conditions(
    summary: HealthSummary, phase: Phase, configured: int, now: datetime, previous: Status | None = None
) -> tuple[Condition, ...]:
    """Ready, BackendsDiscovered and (only when some backend is degraded) Degraded.

    ``lastTransitionTime`` follows Kubernetes ``SetStatusCondition``: it is carried over
    from ``previous`` unless the condition's status flipped, so alerts on "Ready has been
    False for 10 minutes" measure the outage rather than the time since the last build.
    """
    if phase is Phase.READY:
        ready_status, reason = ConditionStatus.TRUE, REASON_ALL_BACKENDS_ROUTABLE
        if summary.total == 0 and configured == 0:
            message = "Ready, no backends configured"
        else:
            message = _ready_text(summary, " are")
    elif phase is Phase.DEGRADED:
        ready_status, reason = ConditionStatus.FALSE, REASON_SOME_BACKENDS_UNHEALTHY
        message = f"{summary.routable}/{summary.total} backends routable"
    elif phase is Phase.FAILED:
        ready_status, reason = ConditionStatus.FALSE, REASON_NO_ROUTABLE_BACKENDS
        message = "No routable backends available"
    else:
        ready_status, reason = ConditionStatus.FALSE, REASON_BACKENDS_PENDING
        message = f"Waiting for initial health checks ({configured} backends configured)"
    conditions = [
        _condition(CONDITION_READY, ready_status, reason, message, now, previous),
        _condition(
            CONDITION_BACKENDS_DISCOVERED,
            ConditionStatus.TRUE,
            REASON_BACKENDS_DISCOVERED,
            "No backends configured" if configured == 0 else f"Discovered {configured} backends",
            now,
            previous,
        ),
    ]
    if summary.degraded > 0:
        conditions.append(
            _condition(
                CONDITION_DEGRADED,
                ConditionStatus.TRUE,
                REASON_BACKENDS_DEGRADED,
                f"{summary.degraded} backends degraded",
                now,
                previous,
            )
        )
    return tuple(conditions)


def format_backend_message(state: BackendHealthState) -> str:
    """``discoveredBackends[].message`` (``formatBackendMessage``): the category, then the reason.

    The reason is the backend's own (credential-free) failure message, so an operator
    reads "Backend unavailable: process exited with code 1" rather than a bare category;
    a backend starting again after a failure says what it is recovering from.
    """
    reason = state.last_error
    if state.last_error_category is not None:
        base = state.last_error_category.text
        if reason:
            base = f"{base}: {reason}"
        if state.consecutive_failures > 1:
            base = f"{base} (failures: {state.consecutive_failures})"
    elif state.status is BackendHealth.DEGRADED:
        n = state.recovering_from
        base = f"Recovering from {n} {'failure' if n == 1 else 'failures'}" if n > 0 else "Degraded performance"
    elif state.lifecycle is LifecycleSignal.STARTING and reason:
        base = f"Reconnecting (last error: {reason})"
    else:
        base = _STATUS_TEXT[state.status]
    return _CIRCUIT_PREFIX.get(state.circuit_state, "") + base


def discovered_backend(view: BackendView, state: BackendHealthState) -> DiscoveredBackend:
    """One ``discoveredBackends`` entry for a backend with data."""
    return DiscoveredBackend(
        name=view.name,
        url=view.url,
        status=state.status.crd_status,
        auth_config_ref=view.auth_config_ref,
        auth_type=view.auth_type,
        last_health_check=state.last_check_time,
        message=format_backend_message(state),
        circuit_breaker_state=state.circuit_state,
        circuit_last_changed=state.circuit_last_changed,
        consecutive_failures=state.consecutive_failures,
        mcp_revision=state.mcp_revision,
    )


def build_status(
    backends: Mapping[str, BackendView],
    configured: int | None,
    now: datetime,
    *,
    previous: Status | None = None,
) -> Status:
    """The whole status for one snapshot of backend health (``Monitor.BuildStatus``).

    ``backends`` is keyed by backend id; ``configured`` defaults to its size and exists
    for callers that know of backends they have no view for yet.  Pass the last status
    built as ``previous`` to keep condition transition times stable.
    """
    count = len(backends) if configured is None else configured
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"configured must be a non-negative integer, got {configured!r}")
    with_data = sorted(
        ((view, view.state) for view in backends.values() if view.state is not None and view.state.observed),
        key=lambda pair: pair[0].name,
    )
    summary = summarize(state for _, state in with_data)
    phase = determine_phase(summary, count)
    return Status(
        phase=phase,
        message=format_status_message(summary, phase, count),
        conditions=build_conditions(summary, phase, count, now, previous),
        discovered_backends=tuple(discovered_backend(view, state) for view, state in with_data),
        backend_count=summary.routable,
        timestamp=now,
    )
