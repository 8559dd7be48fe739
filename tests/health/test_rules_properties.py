"""Health rules against independent models: per-backend history, phase, breaker, status shape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import names
from vmcp_actors.config.health_settings import CircuitBreakerConfig, HealthConfig
from vmcp_actors.health.circuit_breaker import CircuitBreaker
from vmcp_actors.health.probes import ProbeFailureKind, ProbeResult
from vmcp_actors.health.rules import apply_lifecycle, apply_probe, should_probe
from vmcp_actors.health.state import BackendHealthState, LifecycleSignal
from vmcp_actors.health.status_builder import BackendView, build_status
from vmcp_actors.model.codec import decode_status, encode_status
from vmcp_actors.model.conditions import CONDITION_DEGRADED, CONDITION_READY
from vmcp_actors.model.status import BackendHealth, CircuitState, Phase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = 30.0
DEGRADED_AFTER = 5.0

Outcome = Literal["ok", "slow", "fail", "auth"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "slow", "fail", "auth")
outcomes = st.sampled_from(OUTCOMES)


def probe(outcome: Outcome) -> ProbeResult:
    if outcome == "ok":
        return ProbeResult.success(0.2)
    if outcome == "slow":
        return ProbeResult.success(DEGRADED_AFTER + 1.0)
    if outcome == "auth":
        return ProbeResult.failed(ProbeFailureKind.AUTH, "403 forbidden")
    return ProbeResult.failed(ProbeFailureKind.CONNECTION, "connection reset")


# --------------------------------------------------------------------------- (a) reference model


def reference(outcomes: Sequence[Outcome], threshold: int, outgoing: bool) -> list[tuple[str, int, int]]:
    """(status, consecutive failures, index of the last status change) after each probe.

    Written from the prose of the rules rather than as a state machine: the status after
    probe ``i`` is decided by looking back over the history.
    """
    # Outgoing auth does not change what a probe is: a rejected token is a failure
    # (unlike toolhive's PR #4935, see health.rules.probe_status).
    del outgoing
    kinds = list(outcomes)

    def status_after(i: int) -> str:
        kind = kinds[i]
        if kind in ("ok", "slow"):
            if i > 0 and kinds[i - 1] in ("fail", "auth"):
                return "degraded"  # the first success after a failure is "recovering"
            return "healthy" if kind == "ok" else "degraded"
        run_start = i
        while run_start > 0 and kinds[run_start - 1] in ("fail", "auth"):
            run_start -= 1
        if i - run_start + 1 >= threshold:
            return "unauthenticated" if kind == "auth" else "unhealthy"
        return "unknown" if run_start == 0 else status_after(run_start - 1)

    rows = []
    changed = 0
    for i in range(len(kinds)):
        failures = 0
        while failures <= i and kinds[i - failures] in ("fail", "auth"):
            failures += 1
        if i > 0 and status_after(i) != status_after(i - 1):
            changed = i
        rows.append((status_after(i), failures, changed))
    return rows


@settings(max_examples=400, deadline=None)
@given(
    st.lists(outcomes, min_size=1, max_size=25),
    st.integers(min_value=1, max_value=5),
    st.booleans(),
)
def test_per_backend_rules_match_the_reference_model(sequence: list[Outcome], threshold: int, outgoing: bool) -> None:
    cfg = HealthConfig(unhealthy_threshold=threshold, degraded_threshold=DEGRADED_AFTER)
    state: BackendHealthState | None = None
    for i, (outcome, (status, failures, changed)) in enumerate(
        zip(sequence, reference(sequence, threshold, outgoing), strict=True)
    ):
        allowed, state = should_probe(state, cfg, 1000.0 + i * INTERVAL)
        assert allowed  # breaker off: never gated
        now = T0 + timedelta(seconds=i * INTERVAL)
        state = apply_probe(state, probe(outcome), now, 1000.0 + i * INTERVAL, cfg, outgoing)
        assert state.status.value == status, (i, sequence)
        assert state.consecutive_failures == failures
        assert state.last_transition_time == T0 + timedelta(seconds=changed * INTERVAL)
        assert state.last_check_time == now
        assert (state.last_error_category is None) == (failures == 0)
        assert state.circuit_state is CircuitState.CLOSED
        assert state.circuit_last_changed is None


# --------------------------------------------------------------------------- (b) phase consistency


@st.composite
def health_states(draw: st.DrawFn) -> BackendHealthState | None:
    """A backend's state, built through the public transitions so it is a reachable one."""
    kind = draw(st.sampled_from(["none", "probes", "lifecycle"]))
    if kind == "none":
        return None
    cfg = HealthConfig(unhealthy_threshold=draw(st.integers(min_value=1, max_value=3)))
    state: BackendHealthState | None = None
    steps = draw(st.lists(st.one_of(outcomes, st.sampled_from(list(LifecycleSignal))), min_size=1, max_size=6))
    for i, step in enumerate(steps):
        now = T0 + timedelta(seconds=i * INTERVAL)
        if isinstance(step, LifecycleSignal):
            state = apply_lifecycle(state, step, now, "event")
        else:
            state = apply_probe(state, probe(step), now, i * INTERVAL, cfg, draw(st.booleans()))
    return state


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(names, health_states(), max_size=8),
    st.one_of(st.none(), st.integers(min_value=0, max_value=12)),
)
def test_phase_is_consistent_with_the_backend_statuses(
    backends: dict[str, BackendHealthState | None], configured: int | None
) -> None:
    status = build_status({n: BackendView(n, state=s) for n, s in backends.items()}, configured, T0)
    count = len(backends) if configured is None else configured
    with_data = [s.status for s in backends.values() if s is not None and s.observed]
    routable = sum(1 for s in with_data if s is BackendHealth.HEALTHY)  # unauthenticated serves nothing

    assert (status.phase is Phase.READY) == (
        (bool(with_data) and routable == len(with_data)) or (not with_data and count == 0)
    )
    assert (status.phase is Phase.FAILED) == (bool(with_data) and routable == 0)
    assert (status.phase is Phase.PENDING) == (count > 0 and not with_data)
    assert (status.phase is Phase.DEGRADED) == (0 < routable < len(with_data))
    assert status.backend_count == routable
    assert (status.condition(CONDITION_DEGRADED) is not None) == (BackendHealth.DEGRADED in with_data)
    ready = status.condition(CONDITION_READY)
    assert ready is not None
    assert (ready.status.value == "True") == (status.phase is Phase.READY)
    assert len(status.discovered_backends) == len(with_data)


# --------------------------------------------------------------------------- (c) breaker invariants

Op = tuple[str, float]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("attempt"), st.floats(min_value=0.0, max_value=40.0)),
        st.tuples(st.just("success"), st.floats(min_value=0.0, max_value=40.0)),
        st.tuples(st.just("failure"), st.floats(min_value=0.0, max_value=40.0)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops, st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=90), st.booleans())
def test_breaker_never_runs_two_trials_and_stays_shut_while_open(
    sequence: list[Op], failure_threshold: int, open_timeout: int, only_report_allowed: bool
) -> None:
    """Drive a breaker with random attempts and outcomes, time stepping forward between ops.

    ``only_report_allowed`` models the real caller (an outcome only for a probe that ran);
    otherwise outcomes arrive arbitrarily, which the invariants must survive too.
    """
    cfg = CircuitBreakerConfig(enabled=True, failure_threshold=failure_threshold, open_timeout=open_timeout)
    mono = 0.0
    cb = CircuitBreaker.closed(mono, T0)
    opened_at: float | None = None
    in_flight = False
    for op, dt in sequence:
        mono += dt
        now = T0 + timedelta(seconds=mono)
        if op == "attempt":
            before = cb
            allowed, cb = cb.can_attempt(cfg, mono)
            if before.state is CircuitState.OPEN:
                assert opened_at is not None
                assert allowed == (mono - opened_at >= open_timeout)
            if before.state is CircuitState.CLOSED:
                assert allowed
                assert cb is before
            if allowed and cb.state is CircuitState.HALF_OPEN:
                assert not in_flight, "a second half-open trial while one is in flight"
                in_flight = True
            if not allowed:
                assert cb is before  # a refused attempt changes nothing
            continue
        if only_report_allowed and cb.state is not CircuitState.CLOSED and not in_flight:
            continue
        before = cb
        cb = cb.record_success(mono, now) if op == "success" else cb.record_failure(cfg, mono, now)
        in_flight = False
        assert not cb.half_open_test_in_progress
        if op == "success":
            assert cb.state is CircuitState.CLOSED
            assert cb.failure_count == 0
        elif before.state is CircuitState.HALF_OPEN or (
            before.state is CircuitState.CLOSED and cb.failure_count >= failure_threshold
        ):
            assert cb.state is CircuitState.OPEN
            assert cb.changed_mono == mono
        else:
            assert cb.state is before.state
            assert cb.changed_mono == before.changed_mono
        if cb.state is CircuitState.OPEN and before.state is not CircuitState.OPEN:
            opened_at = mono


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(outcomes, st.floats(min_value=0.0, max_value=90.0)), max_size=40))
def test_open_breaker_freezes_the_backend_state(sequence: list[tuple[Outcome, float]]) -> None:
    """Whatever the probes say, while the breaker refuses nothing about the backend changes."""
    cfg = HealthConfig(circuit_breaker=CircuitBreakerConfig(enabled=True, failure_threshold=2, open_timeout=60))
    state: BackendHealthState | None = None
    mono = 0.0
    for outcome, dt in sequence:
        mono += dt
        allowed, asked = should_probe(state, cfg, mono)
        if not allowed:
            assert asked is state
            assert state is not None
            assert state.circuit_state is not CircuitState.CLOSED
            continue
        state = apply_probe(asked, probe(outcome), T0 + timedelta(seconds=mono), mono, cfg, False)
        assert state.circuit is not None
        assert state.circuit.failure_count == state.consecutive_failures


# --------------------------------------------------------------------------- (d) status shape


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.tuples(names, health_states()), max_size=8).filter(
        lambda d: len({name for name, _ in d.values()}) == len(d)
    ),
    st.integers(min_value=0, max_value=3600),
    st.integers(min_value=0, max_value=3600),
)
def test_built_status_is_valid_sorted_unique_and_round_trips(
    backends: dict[str, tuple[str, BackendHealthState | None]], first: int, gap: int
) -> None:
    views = {key: BackendView(name, f"http://{name}/mcp", state=s) for key, (name, s) in backends.items()}
    earlier = build_status(views, None, T0 + timedelta(seconds=first))
    status = build_status(views, None, T0 + timedelta(seconds=first + gap), previous=earlier)
    listed = [b.name for b in status.discovered_backends]
    assert listed == sorted(listed)
    assert len(set(listed)) == len(listed)
    assert set(listed) == {name for name, s in backends.values() if s is not None and s.observed}
    assert decode_status(encode_status(status)) == status
    # Nothing changed between the two builds, so no condition moved its transition time.
    assert [c.last_transition_time for c in status.conditions] == [c.last_transition_time for c in earlier.conditions]
    states = dict(backends.values())
    for backend in status.discovered_backends:
        assert backend.circuit_breaker_state is CircuitState.CLOSED  # breaker disabled
        # The message names the category, then the reason the backend gave (item 21).
        state = states[backend.name]
        assert state is not None
        if state.last_error_category is not None:
            assert backend.message.startswith(state.last_error_category.text)
        if state.last_error and state.status is not BackendHealth.DEGRADED:
            assert state.last_error in backend.message
