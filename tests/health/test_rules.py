"""Health rules and the status builder, rule by rule against toolhive (reference §3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from vmcp_actors.config.health_settings import CircuitBreakerConfig, HealthConfig
from vmcp_actors.errors import ValidationError
from vmcp_actors.health import rules as health
from vmcp_actors.health.circuit_breaker import CircuitBreaker
from vmcp_actors.health.probes import MAX_FAILURE_MESSAGE, ErrorCategory, ProbeFailure, ProbeFailureKind, ProbeResult
from vmcp_actors.health.rules import (
    apply_lifecycle,
    apply_probe,
    probe_status,
    record_failure,
    record_revision,
    record_success,
    should_probe,
)
from vmcp_actors.health.state import BackendHealthState, LifecycleSignal
from vmcp_actors.health.status_builder import (
    BackendView,
    HealthSummary,
    build_conditions,
    build_status,
    determine_phase,
    format_backend_message,
    format_status_message,
    summarize,
)
from vmcp_actors.model.codec import decode_status, encode_status
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
from vmcp_actors.model.status import BackendHealth, CircuitState, ConditionStatus, Phase, Status

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
M0 = 1000.0
H, D, U, K, A = (
    BackendHealth.HEALTHY,
    BackendHealth.DEGRADED,
    BackendHealth.UNHEALTHY,
    BackendHealth.UNKNOWN,
    BackendHealth.UNAUTHENTICATED,
)

OK = ProbeResult.success(0.1)
SLOW = ProbeResult.success(6.0)
FAIL = ProbeResult.failed(ProbeFailureKind.CONNECTION, "connection refused")
AUTH = ProbeResult.failed(ProbeFailureKind.AUTH, "401 unauthorized")
TIMEOUT = ProbeResult.failed(ProbeFailureKind.TIMEOUT, "deadline exceeded")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def config(threshold: int = 3, degraded: float = 5.0, breaker: CircuitBreakerConfig | None = None) -> HealthConfig:
    return HealthConfig(
        unhealthy_threshold=threshold,
        degraded_threshold=degraded,
        circuit_breaker=breaker or CircuitBreakerConfig(),
    )


def run(
    probes: Sequence[ProbeResult], cfg: HealthConfig, outgoing: bool = False, step: float = 30.0
) -> list[BackendHealthState]:
    """Apply probes one interval apart; return the state after each."""
    state: BackendHealthState | None = None
    states = []
    for i, probe in enumerate(probes):
        state = apply_probe(state, probe, at(i * step), M0 + i * step, cfg, outgoing)
        states.append(state)
    return states


def state(status: BackendHealth, **changes: Any) -> BackendHealthState:
    return BackendHealthState(status=status, last_transition_time=T0, last_check_time=T0, **changes)


# --------------------------------------------------------------------------- configuration


def test_defaults_are_toolhives_and_defined_once() -> None:
    cfg = HealthConfig()
    assert (cfg.check_interval, cfg.timeout, cfg.unhealthy_threshold, cfg.degraded_threshold) == (30.0, 10.0, 3, 5.0)
    assert cfg.circuit_breaker == CircuitBreakerConfig(enabled=False, failure_threshold=5, open_timeout=60.0)
    assert cfg.check_interval == health.DEFAULT_CHECK_INTERVAL
    assert cfg.timeout == health.DEFAULT_TIMEOUT
    assert cfg.unhealthy_threshold == health.DEFAULT_UNHEALTHY_THRESHOLD
    assert cfg.degraded_threshold == health.DEFAULT_DEGRADED_THRESHOLD
    assert cfg.circuit_breaker.failure_threshold == health.DEFAULT_BREAKER_FAILURE_THRESHOLD
    assert cfg.circuit_breaker.open_timeout == health.DEFAULT_BREAKER_OPEN_TIMEOUT


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"check_interval": 0}, "healthCheckInterval", "must be > 0"),
        ({"check_interval": -30}, "healthCheckInterval", "must be > 0"),
        ({"check_interval": "30s"}, "healthCheckInterval", "number of seconds"),
        ({"check_interval": float("inf")}, "healthCheckInterval", "finite"),
        ({"timeout": -1}, "healthCheckTimeout", ">= 0"),
        (
            {"timeout": 30},
            "healthCheckTimeout",
            "must be less than healthCheckInterval to prevent checks from queuing up",
        ),
        (
            {"check_interval": 5, "timeout": 6},
            "healthCheckTimeout",
            "must be less than healthCheckInterval to prevent checks from queuing up",
        ),
        ({"timeout": float("nan")}, "healthCheckTimeout", "finite"),
        ({"unhealthy_threshold": 0}, "unhealthyThreshold", ">= 1"),
        ({"unhealthy_threshold": 2.5}, "unhealthyThreshold", "integer"),
        ({"unhealthy_threshold": True}, "unhealthyThreshold", "integer"),
        ({"degraded_threshold": -0.5}, "degradedThreshold", ">= 0"),
        ({"circuit_breaker": {"enabled": True}}, "circuitBreaker", "CircuitBreakerConfig"),
    ],
)
def test_invalid_config_names_the_yaml_field(kwargs: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        HealthConfig(**kwargs)
    assert info.value.field == field
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "circuitBreaker.failureThreshold"),
        ({"enabled": True, "failure_threshold": 0}, "circuitBreaker.failureThreshold"),
        ({"enabled": True, "open_timeout": 0}, "circuitBreaker.timeout"),
        ({"enabled": True, "open_timeout": 0.5}, "circuitBreaker.timeout"),
        ({"enabled": "yes"}, "circuitBreaker.enabled"),
        ({"open_timeout": "60s"}, "circuitBreaker.timeout"),
    ],
)
def test_invalid_breaker_config_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CircuitBreakerConfig(**kwargs)
    assert info.value.field == field


def test_accepted_edge_values() -> None:
    assert HealthConfig(check_interval=5, timeout=0).timeout == 0.0  # 0 = no timeout, no ordering rule
    assert HealthConfig(check_interval=5, timeout=4.999).timeout == 4.999
    assert HealthConfig(unhealthy_threshold=1, degraded_threshold=0).unhealthy_threshold == 1
    # A disabled breaker's timeout is not checked, as in toolhive's validator.
    assert CircuitBreakerConfig(enabled=False, open_timeout=0).open_timeout == 0.0
    assert CircuitBreakerConfig(enabled=True, open_timeout=1).open_timeout == 1.0


# --------------------------------------------------------------------------- probe results


def test_probe_result_requires_a_failure_exactly_when_not_ok() -> None:
    with pytest.raises(ValidationError) as info:
        ProbeResult(ok=True, failure=ProbeFailure(ProbeFailureKind.OTHER))
    assert info.value.field == "probeResult.failure"
    with pytest.raises(ValidationError):
        ProbeResult(ok=False)
    with pytest.raises(ValidationError) as info:
        ProbeResult.success(-0.1)
    assert info.value.field == "probeResult.latency"


def test_probe_failure_messages_are_one_bounded_line_and_kinds_are_checked() -> None:
    failure = ProbeFailure("timeout", "line one\n  line two\tend")
    assert failure.kind is ProbeFailureKind.TIMEOUT
    assert failure.message == "line one line two end"
    long = ProbeFailure(ProbeFailureKind.OTHER, "x" * 1000).message
    assert len(long) == MAX_FAILURE_MESSAGE
    assert long.endswith("…")
    with pytest.raises(ValidationError) as info:
        ProbeFailure("teapot")
    assert info.value.field == "probeFailure.kind"


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        (ProbeFailureKind.AUTH, ErrorCategory.AUTHENTICATION_FAILED),
        (ProbeFailureKind.TIMEOUT, ErrorCategory.TIMEOUT),
        (ProbeFailureKind.CONNECTION, ErrorCategory.CONNECTION_FAILED),
        (ProbeFailureKind.OTHER, ErrorCategory.HEALTH_CHECK_FAILED),
    ],
)
def test_failure_kinds_map_to_toolhives_sanitized_categories(kind: ProbeFailureKind, category: ErrorCategory) -> None:
    assert ProbeFailure(kind).category is category
    after = apply_probe(None, ProbeResult.failed(kind, "detail"), T0, M0, config(threshold=1), False)
    assert after.last_error_category is category
    assert after.last_error == "detail"


@pytest.mark.parametrize(
    ("result", "degraded", "expected"),
    [
        (ProbeResult.success(0.0), 5.0, H),
        (ProbeResult.success(5.0), 5.0, H),  # strictly slower than the threshold
        (ProbeResult.success(5.001), 5.0, D),
        (ProbeResult.success(600.0), 0.0, H),  # 0 disables the slow rule
        (FAIL, 5.0, U),
        (TIMEOUT, 5.0, U),
        (AUTH, 5.0, A),
        (ProbeResult.failed(ProbeFailureKind.AUTH, latency=9.0), 5.0, A),  # no slow check on this path
    ],
)
def test_probe_classification(result: ProbeResult, degraded: float, expected: BackendHealth) -> None:
    assert probe_status(result, config(degraded=degraded)) is expected


@pytest.mark.parametrize("outgoing", [False, True])
def test_a_rejected_token_is_unauthenticated_with_or_without_outgoing_auth(outgoing: bool) -> None:
    """Bug: with outgoing auth a 401 probe read healthy, overwriting the lifecycle's auth_required.

    The probe is a ping on the backend's own session, which carries the configured
    token: a 401 there means the token is rejected, not that a user token is missing.
    """
    states = run([OK, AUTH], config(threshold=1), outgoing)
    assert [s.status for s in states] == [H, A]
    assert states[-1].has_outgoing_auth is outgoing


# --------------------------------------------------------------------------- per-backend rules


@pytest.mark.parametrize(
    ("threshold", "outgoing", "probes", "expected"),
    [
        pytest.param(3, False, [FAIL, FAIL, FAIL, FAIL], [K, K, U, U], id="first-failure-unknown-then-threshold"),
        pytest.param(1, False, [FAIL], [U], id="threshold-1-first-failure-is-unhealthy"),
        pytest.param(1, False, [AUTH], [A], id="threshold-1-first-auth-is-unauthenticated"),
        pytest.param(3, False, [OK, FAIL, FAIL, FAIL], [H, H, H, U], id="healthy-kept-below-threshold"),
        pytest.param(3, False, [OK, FAIL, OK, OK], [H, H, D, H], id="recovering-for-one-interval"),
        pytest.param(2, False, [FAIL, OK, OK], [K, D, H], id="recovering-from-unknown"),
        pytest.param(2, False, [FAIL, FAIL, OK, OK], [K, U, D, H], id="recovering-from-unhealthy"),
        pytest.param(3, False, [SLOW], [D], id="slow-first"),
        pytest.param(3, False, [OK, SLOW, OK], [H, D, H], id="slow-then-fast"),
        pytest.param(3, False, [FAIL, SLOW, SLOW], [K, D, D], id="recovering-then-still-slow"),
        pytest.param(3, False, [AUTH, AUTH, AUTH], [K, K, A], id="auth-without-outgoing-auth"),
        pytest.param(3, True, [AUTH, AUTH, AUTH], [K, K, A], id="auth-with-outgoing-auth-is-unauthenticated-too"),
        pytest.param(3, True, [OK, AUTH, AUTH, AUTH], [H, H, H, A], id="a-rotated-token-fails-like-any-probe"),
        pytest.param(2, False, [FAIL, FAIL, AUTH], [K, U, A], id="failure-status-follows-latest-at-threshold"),
        pytest.param(2, False, [AUTH, AUTH, TIMEOUT], [K, A, U], id="unauthenticated-to-unhealthy"),
        pytest.param(3, False, [OK, AUTH, FAIL, TIMEOUT], [H, H, H, U], id="mixed-failures-share-one-run"),
    ],
)
def test_status_sequence(
    threshold: int, outgoing: bool, probes: list[ProbeResult], expected: list[BackendHealth]
) -> None:
    states = run(probes, config(threshold=threshold), outgoing)
    assert [s.status for s in states] == expected


def test_failure_count_error_and_check_time_follow_each_probe() -> None:
    states = run([FAIL, TIMEOUT, OK, AUTH], config(), outgoing=False)
    assert [s.consecutive_failures for s in states] == [1, 2, 0, 1]
    assert [s.last_error_category for s in states] == [
        ErrorCategory.CONNECTION_FAILED,
        ErrorCategory.TIMEOUT,
        None,
        ErrorCategory.AUTHENTICATION_FAILED,
    ]
    assert [s.last_error for s in states] == ["connection refused", "deadline exceeded", "", "401 unauthorized"]
    assert [s.last_check_time for s in states] == [at(0), at(30), at(60), at(90)]
    assert [s.recovering_from for s in states] == [0, 0, 2, 0]


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    states = run([OK, OK, FAIL, FAIL, FAIL, FAIL, OK, OK, OK], config())
    assert [s.status for s in states] == [H, H, H, H, U, U, D, H, H]
    assert [s.last_transition_time for s in states] == [
        at(0),
        at(0),
        at(0),
        at(0),
        at(120),
        at(120),
        at(180),
        at(210),
        at(210),
    ]


def test_first_result_stamps_the_transition_time() -> None:
    assert apply_probe(None, FAIL, at(5), M0, config(), False).last_transition_time == at(5)
    assert apply_probe(None, OK, at(7), M0, config(), False).last_transition_time == at(7)


def test_outgoing_auth_flag_is_recorded() -> None:
    first = apply_probe(None, AUTH, T0, M0, config(), True)
    assert first.has_outgoing_auth
    assert not apply_probe(first, AUTH, at(30), M0 + 30, config(), False).has_outgoing_auth


def test_record_functions_reject_statuses_of_the_other_kind() -> None:
    with pytest.raises(ValueError, match="healthy or degraded"):
        record_success(None, U, T0, M0, config())
    with pytest.raises(ValueError, match="unhealthy or unauthenticated"):
        record_failure(None, H, ProbeFailure(ProbeFailureKind.OTHER), T0, M0, config())
    with pytest.raises(ValueError, match="unhealthy or unauthenticated"):
        record_failure(None, K, ProbeFailure(ProbeFailureKind.OTHER), T0, M0, config())


def test_revision_is_a_read_model_copy_only() -> None:
    before = run([OK], config())[0]
    after = record_revision(before, "2025-11-25")
    assert after.mcp_revision == "2025-11-25"
    assert attrs.evolve(after, mcp_revision="") == before
    assert record_revision(after, "2025-11-25") is after


def test_state_validation_names_fields() -> None:
    with pytest.raises(ValidationError) as info:
        BackendHealthState(status="sick", last_transition_time=T0)
    assert info.value.field == "backendHealth.status"
    with pytest.raises(ValidationError) as info:
        BackendHealthState(status=H, last_transition_time=datetime(2026, 1, 1))
    assert info.value.field == "backendHealth.lastTransitionTime"
    with pytest.raises(ValidationError) as info:
        BackendHealthState(status=H, last_transition_time=T0, consecutive_failures=-1)
    assert info.value.field == "backendHealth.consecutiveFailures"


# --------------------------------------------------------------------------- circuit breaker

BREAKER = CircuitBreakerConfig(enabled=True, failure_threshold=2, open_timeout=60)


def test_breaker_full_cycle_with_explicit_monotonic_times() -> None:
    cfg = config(threshold=3, breaker=BREAKER)
    allowed, s = should_probe(None, cfg, M0)
    assert allowed
    assert s is None

    s = apply_probe(None, FAIL, at(0), M0, cfg, False)
    assert s.circuit is not None
    assert (s.circuit_state, s.circuit.failure_count, s.circuit_last_changed) == (CircuitState.CLOSED, 1, at(0))

    s = apply_probe(s, FAIL, at(10), M0 + 10, cfg, False)
    assert s.circuit is not None
    assert (s.circuit_state, s.circuit.failure_count, s.circuit_last_changed) == (CircuitState.OPEN, 2, at(10))
    assert s.status is K  # the breaker opened before the unhealthy threshold: status frozen at unknown

    allowed, blocked = should_probe(s, cfg, M0 + 69.999)
    assert not allowed
    assert blocked is s

    allowed, s2 = should_probe(s, cfg, M0 + 70)
    assert allowed
    assert s2 is not None
    assert s2.circuit is not None
    assert s2.circuit_state is CircuitState.HALF_OPEN
    assert s2.circuit.half_open_test_in_progress
    assert s2.circuit_last_changed == at(70)  # wall stamp derived from the monotonic delta
    assert (s2.status, s2.consecutive_failures, s2.last_check_time) == (s.status, 2, at(10))

    allowed, s3 = should_probe(s2, cfg, M0 + 71)
    assert not allowed
    assert s3 is s2  # one trial at a time

    s4 = apply_probe(s2, FAIL, at(72), M0 + 72, cfg, False)  # trial failed: open again
    assert s4.circuit is not None
    assert (s4.circuit_state, s4.circuit_last_changed, s4.circuit.failure_count) == (CircuitState.OPEN, at(72), 3)
    assert s4.status is U  # the trial's failure was the third: threshold reached
    assert not should_probe(s4, cfg, M0 + 131)[0]

    allowed, s5 = should_probe(s4, cfg, M0 + 132)
    assert allowed
    assert s5 is not None
    assert s5.circuit_state is CircuitState.HALF_OPEN
    s6 = apply_probe(s5, OK, at(133), M0 + 133, cfg, False)
    assert s6.circuit is not None
    assert (s6.circuit_state, s6.circuit.failure_count, s6.circuit_last_changed) == (CircuitState.CLOSED, 0, at(133))
    assert s6.status is D  # half-open success: recovering
    s7 = apply_probe(s6, OK, at(163), M0 + 163, cfg, False)
    assert (s7.status, s7.circuit_state, s7.circuit_last_changed) == (H, CircuitState.CLOSED, at(133))


def test_breaker_methods_follow_section_3_5() -> None:
    cb = CircuitBreaker.closed(0.0, T0)
    assert cb.can_attempt(BREAKER, 1e9) == (True, cb)
    once = cb.record_failure(BREAKER, 1.0, at(1))
    assert (once.state, once.failure_count, once.changed_at) == (CircuitState.CLOSED, 1, T0)
    opened = once.record_failure(BREAKER, 2.0, at(2))
    assert (opened.state, opened.changed_mono, opened.changed_at) == (CircuitState.OPEN, 2.0, at(2))
    still = opened.record_failure(BREAKER, 3.0, at(3))  # failures while open do not restamp it
    assert (still.state, still.failure_count, still.changed_mono) == (CircuitState.OPEN, 3, 2.0)
    half = CircuitBreaker(changed_mono=5.0, changed_at=T0, state=CircuitState.HALF_OPEN)
    allowed, reserved = half.can_attempt(BREAKER, 5.0)
    assert allowed
    assert reserved.half_open_test_in_progress
    assert reserved.changed_mono == 5.0
    assert reserved.can_attempt(BREAKER, 1e9) == (False, reserved)
    closed = reserved.record_success(6.0, at(6))
    assert (closed.state, closed.failure_count, closed.half_open_test_in_progress) == (CircuitState.CLOSED, 0, False)
    assert closed.changed_at == at(6)
    # A success while already closed resets the count but is not a state change.
    assert once.record_success(9.0, at(9)) == attrs.evolve(once, failure_count=0)


def test_disabled_breaker_reports_closed_without_a_time_and_never_blocks() -> None:
    cfg = config(threshold=1)
    states = run([FAIL] * 20, cfg)
    assert all(s.circuit is None for s in states)
    assert states[-1].circuit_state is CircuitState.CLOSED
    assert states[-1].circuit_last_changed is None
    allowed, same = should_probe(states[-1], cfg, M0 + 1e6)
    assert allowed
    assert same is states[-1]


def test_disabling_the_breaker_drops_its_state() -> None:
    enabled = config(breaker=BREAKER)
    s = run([FAIL, FAIL], enabled)[-1]
    assert s.circuit_state is CircuitState.OPEN
    allowed, after = should_probe(s, config(), M0 + 61)
    assert allowed
    assert after is not None
    assert after.circuit is None


# --------------------------------------------------------------------------- lifecycle signals


def test_starting_is_unknown_and_unobserved_until_something_happens() -> None:
    s = apply_lifecycle(None, LifecycleSignal.STARTING, T0, "spawning")
    assert (s.status, s.observed, s.lifecycle, s.last_check_time) == (K, False, LifecycleSignal.STARTING, None)
    assert (s.last_error_category, s.last_error) == (None, "")
    seen = apply_lifecycle(run([OK], config())[0], LifecycleSignal.STARTING, at(5))
    assert (seen.status, seen.observed, seen.last_transition_time) == (K, True, at(5))


def test_a_backend_starting_again_keeps_saying_why_it_went_down() -> None:
    """Bug: a reconnecting backend's message was a bare "Unknown"; the reason was only in the table and logs."""
    lost = apply_lifecycle(run([OK], config())[0], LifecycleSignal.SESSION_LOST, at(5), "process exited with code 1")
    assert format_backend_message(lost) == "Backend unavailable: process exited with code 1"
    again = apply_lifecycle(lost, LifecycleSignal.STARTING, at(6))
    assert (again.status, again.last_error_category, again.last_error) == (K, None, "process exited with code 1")
    assert format_backend_message(again) == "Reconnecting (last error: process exited with code 1)"
    denied = apply_lifecycle(again, LifecycleSignal.AUTH_REQUIRED, at(7), "HTTP 401 Unauthorized for POST /mcp")
    assert format_backend_message(denied) == "Authentication failed: HTTP 401 Unauthorized for POST /mcp"
    back = apply_lifecycle(denied, LifecycleSignal.CONNECTED, at(8))
    assert format_backend_message(back) == "Healthy"


def test_session_lost_is_unhealthy_at_once_without_counting_a_probe_failure() -> None:
    healthy = run([OK, OK], config(threshold=5))[-1]
    lost = apply_lifecycle(healthy, LifecycleSignal.SESSION_LOST, at(45), "process exited with code 1")
    assert lost.status is U
    assert lost.last_transition_time == at(45)
    assert lost.consecutive_failures == 0
    assert lost.last_check_time == healthy.last_check_time  # no health check ran
    assert (lost.last_error_category, lost.last_error) == (
        ErrorCategory.BACKEND_UNAVAILABLE,
        "process exited with code 1",
    )
    fresh = apply_lifecycle(None, LifecycleSignal.SESSION_LOST, T0)
    assert (fresh.status, fresh.observed) == (U, True)


def test_auth_required_is_unauthenticated_at_once() -> None:
    s = apply_lifecycle(run([OK], config())[0], LifecycleSignal.AUTH_REQUIRED, at(1), "www-authenticate: Bearer")
    assert (s.status, s.last_error_category, s.last_transition_time) == (
        A,
        ErrorCategory.AUTHENTICATION_FAILED,
        at(1),
    )


@pytest.mark.parametrize(
    "before",
    [LifecycleSignal.STARTING, LifecycleSignal.SESSION_LOST, LifecycleSignal.AUTH_REQUIRED],
)
def test_connected_undoes_a_lifecycle_status_without_recovering(before: LifecycleSignal) -> None:
    s = apply_lifecycle(apply_lifecycle(None, before, T0), LifecycleSignal.CONNECTED, at(3))
    assert (s.status, s.lifecycle, s.observed, s.last_error_category) == (H, None, True, None)
    assert s.last_transition_time == at(3)


def test_connected_without_history_is_healthy() -> None:
    s = apply_lifecycle(None, LifecycleSignal.CONNECTED, T0)
    assert (s.status, s.observed, s.last_transition_time, s.consecutive_failures) == (H, True, T0, 0)


def test_connected_after_failing_probes_goes_through_recovering() -> None:
    cfg = config(threshold=5)
    failing = run([OK, FAIL, FAIL], cfg)[-1]
    assert (failing.status, failing.consecutive_failures) == (H, 2)
    for s in (failing, apply_lifecycle(failing, LifecycleSignal.SESSION_LOST, at(70))):
        connected = apply_lifecycle(s, LifecycleSignal.CONNECTED, at(75))
        assert (connected.status, connected.consecutive_failures, connected.recovering_from) == (D, 0, 2)
        assert format_backend_message(connected) == "Recovering from 2 failures"
        assert apply_probe(connected, OK, at(90), M0 + 90, cfg, False).status is H


def test_connected_keeps_what_probes_found() -> None:
    slow = run([SLOW], config())[0]
    assert apply_lifecycle(slow, LifecycleSignal.CONNECTED, at(9)) == slow
    healthy = run([OK], config())[0]
    assert apply_lifecycle(healthy, LifecycleSignal.CONNECTED, at(9)) == healthy


def test_probe_success_after_session_loss_is_not_recovering() -> None:
    lost = apply_lifecycle(run([OK], config())[0], LifecycleSignal.SESSION_LOST, at(1))
    back = apply_probe(lost, OK, at(30), M0 + 30, config(), False)
    assert (back.status, back.lifecycle, back.last_error_category) == (H, None, None)


def test_probe_failures_after_session_loss_keep_it_unhealthy() -> None:
    lost = apply_lifecycle(None, LifecycleSignal.SESSION_LOST, T0)
    failed = apply_probe(lost, FAIL, at(30), M0 + 30, config(threshold=3), False)
    assert (failed.status, failed.consecutive_failures, failed.last_transition_time) == (U, 1, T0)


def test_lifecycle_signals_leave_the_breaker_alone() -> None:
    opened = run([FAIL, FAIL], config(breaker=BREAKER))[-1]
    for signal in LifecycleSignal:
        assert apply_lifecycle(opened, signal, at(99)).circuit is opened.circuit


# --------------------------------------------------------------------------- phase and messages


def test_summary_counts_observed_states_only() -> None:
    starting = apply_lifecycle(None, LifecycleSignal.STARTING, T0)
    summary = summarize([starting, state(H), state(A), state(D), state(U), state(K), state(H)])
    assert summary == HealthSummary(total=6, healthy=2, degraded=1, unhealthy=1, unknown=1, unauthenticated=1)
    assert summary.routable == 2  # unauthenticated serves nothing: not routable (toolhive #4920 stop-gap not copied)


@pytest.mark.parametrize(
    ("summary", "configured", "phase"),
    [
        pytest.param(HealthSummary(), 0, Phase.READY, id="row1-cold-start"),
        pytest.param(HealthSummary(), 2, Phase.PENDING, id="row2-no-data-yet"),
        pytest.param(HealthSummary(total=2, healthy=2), 2, Phase.READY, id="row3-all-routable"),
        pytest.param(HealthSummary(total=2, healthy=1, unauthenticated=1), 2, Phase.DEGRADED, id="unauthenticated"),
        pytest.param(HealthSummary(total=1, unauthenticated=1), 1, Phase.FAILED, id="wrong-token-is-not-ready"),
        pytest.param(HealthSummary(total=3, degraded=1, unhealthy=1, unknown=1), 3, Phase.FAILED, id="row4-none"),
        pytest.param(HealthSummary(total=2, healthy=1, unhealthy=1), 2, Phase.DEGRADED, id="row5-some"),
        pytest.param(HealthSummary(total=1, degraded=1), 1, Phase.FAILED, id="lone-degraded-is-failed"),
        pytest.param(HealthSummary(total=2, unknown=2), 2, Phase.FAILED, id="all-unknown-is-failed-not-pending"),
        pytest.param(HealthSummary(total=1, healthy=1), 0, Phase.READY, id="data-beats-configured"),
    ],
)
def test_phase_table(summary: HealthSummary, configured: int, phase: Phase) -> None:
    assert determine_phase(summary, configured) is phase


@pytest.mark.parametrize(
    ("summary", "configured", "message", "ready_message"),
    [
        (HealthSummary(), 0, "Ready, no backends configured", "Ready, no backends configured"),
        (
            HealthSummary(),
            1,
            "Waiting for initial health checks (1 backends configured)",
            "Waiting for initial health checks (1 backends configured)",
        ),
        (HealthSummary(total=1, healthy=1), 1, "All 1 backend healthy", "All 1 backend are healthy"),
        (HealthSummary(total=3, healthy=3), 3, "All 3 backends healthy", "All 3 backends are healthy"),
        (
            HealthSummary(total=1, unauthenticated=1),
            1,
            "No routable backends (0 degraded, 0 unhealthy, 0 unknown, 1 unauthenticated)",
            "No routable backends available",
        ),
        (
            HealthSummary(total=2, healthy=1, unauthenticated=1),
            2,
            "1/2 backends routable (0 degraded, 0 unhealthy, 0 unknown, 1 unauthenticated)",
            "1/2 backends routable",
        ),
        (
            HealthSummary(total=3, degraded=1, unhealthy=1, unknown=1),
            3,
            "No routable backends (1 degraded, 1 unhealthy, 1 unknown)",
            "No routable backends available",
        ),
        (
            HealthSummary(total=4, healthy=2, degraded=2),
            4,
            "2/4 backends routable (2 degraded, 0 unhealthy, 0 unknown)",
            "2/4 backends routable",
        ),
    ],
)
def test_messages(summary: HealthSummary, configured: int, message: str, ready_message: str) -> None:
    phase = determine_phase(summary, configured)
    assert format_status_message(summary, phase, configured) == message
    ready = build_conditions(summary, phase, configured, T0)[0]
    assert (ready.type, ready.message) == (CONDITION_READY, ready_message)


@pytest.mark.parametrize(
    ("summary", "configured", "status", "reason"),
    [
        (HealthSummary(), 0, ConditionStatus.TRUE, REASON_ALL_BACKENDS_ROUTABLE),
        (HealthSummary(total=1, healthy=1), 1, ConditionStatus.TRUE, REASON_ALL_BACKENDS_ROUTABLE),
        (HealthSummary(total=2, healthy=1, degraded=1), 2, ConditionStatus.FALSE, REASON_SOME_BACKENDS_UNHEALTHY),
        (HealthSummary(total=2, unhealthy=2), 2, ConditionStatus.FALSE, REASON_NO_ROUTABLE_BACKENDS),
        (HealthSummary(), 2, ConditionStatus.FALSE, REASON_BACKENDS_PENDING),
    ],
)
def test_ready_condition_status_and_reason(
    summary: HealthSummary, configured: int, status: ConditionStatus, reason: str
) -> None:
    ready = build_conditions(summary, determine_phase(summary, configured), configured, T0)[0]
    assert (ready.status, ready.reason, ready.last_transition_time) == (status, reason, T0)


def test_backends_discovered_is_always_true_and_not_pluralised() -> None:
    for configured, message in (
        (0, "No backends configured"),
        (1, "Discovered 1 backends"),
        (4, "Discovered 4 backends"),
    ):
        conditions = build_conditions(HealthSummary(), determine_phase(HealthSummary(), configured), configured, T0)
        discovered = conditions[1]
        assert (discovered.type, discovered.status, discovered.reason, discovered.message) == (
            CONDITION_BACKENDS_DISCOVERED,
            ConditionStatus.TRUE,
            REASON_BACKENDS_DISCOVERED,
            message,
        )


def test_degraded_condition_only_when_some_backend_is_degraded() -> None:
    summary = HealthSummary(total=3, healthy=2, degraded=1)
    conditions = build_conditions(summary, Phase.DEGRADED, 3, T0)
    assert [c.type for c in conditions] == [CONDITION_READY, CONDITION_BACKENDS_DISCOVERED, CONDITION_DEGRADED]
    degraded = conditions[2]
    assert (degraded.status, degraded.reason, degraded.message) == (
        ConditionStatus.TRUE,
        REASON_BACKENDS_DEGRADED,
        "1 backends degraded",
    )
    none = build_conditions(HealthSummary(total=2, healthy=1, unhealthy=1), Phase.DEGRADED, 2, T0)
    assert [c.type for c in none] == [CONDITION_READY, CONDITION_BACKENDS_DISCOVERED]


# --------------------------------------------------------------------------- backend messages


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (state(H), "Healthy"),
        (state(D), "Degraded performance"),
        (state(D, recovering_from=1), "Recovering from 1 failure"),
        (state(D, recovering_from=4), "Recovering from 4 failures"),
        (state(U), "Unhealthy"),
        (state(A), "Authentication misconfigured (backend requires auth, none configured)"),
        (state(K), "Unknown"),
        (state(K, consecutive_failures=1, last_error_category=ErrorCategory.CONNECTION_FAILED), "Connection failed"),
        (
            state(U, consecutive_failures=3, last_error_category=ErrorCategory.CONNECTION_FAILED),
            "Connection failed (failures: 3)",
        ),
        (
            state(U, consecutive_failures=2, last_error_category=ErrorCategory.TIMEOUT),
            "Health check timed out (failures: 2)",
        ),
        (
            state(A, consecutive_failures=1, last_error_category=ErrorCategory.AUTHENTICATION_FAILED),
            "Authentication failed",
        ),
        (state(U, last_error_category=ErrorCategory.BACKEND_UNAVAILABLE), "Backend unavailable"),
        (
            state(U, consecutive_failures=1, last_error_category=ErrorCategory.HEALTH_CHECK_FAILED),
            "Health check failed",
        ),
        (
            state(
                U,
                consecutive_failures=5,
                last_error_category=ErrorCategory.CONNECTION_FAILED,
                circuit=CircuitBreaker(changed_mono=0, changed_at=T0, state=CircuitState.OPEN),
            ),
            "Circuit breaker OPEN - Connection failed (failures: 5)",
        ),
        (
            state(K, circuit=CircuitBreaker(changed_mono=0, changed_at=T0, state=CircuitState.HALF_OPEN)),
            "Circuit breaker testing recovery - Unknown",
        ),
        (state(H, circuit=CircuitBreaker.closed(0, T0)), "Healthy"),
    ],
)
def test_backend_message(backend: BackendHealthState, message: str) -> None:
    assert format_backend_message(backend) == message


def test_recovering_message_is_reachable_through_probes() -> None:
    states = run([OK, FAIL, FAIL, OK, OK], config())
    assert [format_backend_message(s) for s in states] == [
        "Healthy",
        "Connection failed: connection refused",
        "Connection failed: connection refused (failures: 2)",
        "Recovering from 2 failures",
        "Healthy",
    ]


# --------------------------------------------------------------------------- build_status


def views(**states: BackendHealthState | None) -> dict[str, BackendView]:
    return {f"id-{name}": BackendView(name=name, url=f"http://{name}:8080/mcp", state=s) for name, s in states.items()}


def test_status_lists_backends_with_data_sorted_by_name() -> None:
    backends = {
        "id-3": BackendView("zeta", "http://z/mcp", "zeta-auth", "token_exchange", state(H, mcp_revision="2025-11-25")),
        "id-1": BackendView("alpha", "http://a/mcp", state=state(U, consecutive_failures=4)),
        "id-2": BackendView("mid", "http://m/mcp", state=None),
        "id-4": BackendView("beta", state=apply_lifecycle(None, LifecycleSignal.STARTING, T0)),
    }
    status = build_status(backends, None, at(60))
    assert [b.name for b in status.discovered_backends] == ["alpha", "zeta"]
    assert (status.phase, status.backend_count, status.timestamp) == (Phase.DEGRADED, 1, at(60))
    assert status.message == "1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown)"
    assert status.condition(CONDITION_BACKENDS_DISCOVERED) is not None
    assert status.condition(CONDITION_BACKENDS_DISCOVERED).message == "Discovered 4 backends"  # type: ignore[union-attr]
    zeta = status.backend("zeta")
    assert zeta is not None
    assert (zeta.url, zeta.status, zeta.auth_config_ref, zeta.auth_type, zeta.mcp_revision) == (
        "http://z/mcp",
        "ready",
        "zeta-auth",
        "token_exchange",
        "2025-11-25",
    )
    assert (zeta.last_health_check, zeta.circuit_breaker_state, zeta.circuit_last_changed) == (
        T0,
        CircuitState.CLOSED,
        None,
    )
    alpha = status.backend("alpha")
    assert alpha is not None
    assert (alpha.status, alpha.consecutive_failures, alpha.message) == ("unavailable", 4, "Unhealthy")


def test_status_order_does_not_depend_on_mapping_order() -> None:
    items = list(views(c=state(H), a=state(D), b=state(U)).items())
    forward = build_status(dict(items), None, T0)
    backward = build_status(dict(reversed(items)), None, T0)
    assert forward == backward
    assert [b.name for b in forward.discovered_backends] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("states", "configured", "phase", "count"),
    [
        pytest.param({}, None, Phase.READY, 0, id="row1"),
        pytest.param({"a": None, "b": None}, None, Phase.PENDING, 0, id="row2"),
        pytest.param({"a": state(H), "b": state(H)}, None, Phase.READY, 2, id="row3"),
        pytest.param({"a": state(H), "b": state(A)}, None, Phase.DEGRADED, 1, id="unauthenticated-is-not-routable"),
        pytest.param({"a": state(D), "b": state(K)}, None, Phase.FAILED, 0, id="row4"),
        pytest.param({"a": state(H), "b": state(D), "c": None}, None, Phase.DEGRADED, 1, id="row5"),
        pytest.param({}, 3, Phase.PENDING, 0, id="configured-without-views"),
    ],
)
def test_build_status_phase_rows(
    states: dict[str, BackendHealthState | None], configured: int | None, phase: Phase, count: int
) -> None:
    status = build_status(views(**states), configured, T0)
    assert (status.phase, status.backend_count) == (phase, count)
    assert decode_status(encode_status(status)) == status


def test_build_status_rejects_a_negative_configured_count() -> None:
    with pytest.raises(ValueError, match="configured"):
        build_status({}, -1, T0)


def test_condition_transition_times_survive_rebuilds_until_the_status_flips() -> None:
    first = build_status(views(a=state(H), b=state(H)), None, at(0))
    assert all(c.last_transition_time == at(0) for c in first.conditions)

    # Same statuses, different message (a third healthy backend joins): times kept.
    second = build_status(views(a=state(H), b=state(H), c=state(H)), None, at(30), previous=first)
    assert second.condition(CONDITION_READY) is not None
    assert second.condition(CONDITION_READY).message == "All 3 backends are healthy"  # type: ignore[union-attr]
    assert all(c.last_transition_time == at(0) for c in second.conditions)

    # Ready flips to False and Degraded appears: both stamped now; BackendsDiscovered kept.
    third = build_status(views(a=state(H), b=state(D)), None, at(60), previous=second)
    times = {c.type: c.last_transition_time for c in third.conditions}
    assert times == {CONDITION_READY: at(60), CONDITION_BACKENDS_DISCOVERED: at(0), CONDITION_DEGRADED: at(60)}

    # Still degraded, different reason text: kept.  Then Degraded disappears and comes back: new time.
    fourth = build_status(views(a=state(U), b=state(D)), None, at(90), previous=third)
    assert {c.type: c.last_transition_time for c in fourth.conditions} == times
    fifth = build_status(views(a=state(H), b=state(H)), None, at(120), previous=fourth)
    assert fifth.condition(CONDITION_DEGRADED) is None
    assert fifth.condition(CONDITION_READY).last_transition_time == at(120)  # type: ignore[union-attr]
    sixth = build_status(views(a=state(H), b=state(D)), None, at(150), previous=fifth)
    assert sixth.condition(CONDITION_DEGRADED).last_transition_time == at(150)  # type: ignore[union-attr]


def test_previous_status_from_elsewhere_is_only_read_for_times() -> None:
    foreign = Status(phase=Phase.READY, message="from the CRD", backend_count=9)
    status = build_status(views(a=state(H)), None, at(5), previous=foreign)
    assert all(c.last_transition_time == at(5) for c in status.conditions)
    assert status.message == "All 1 backend healthy"
