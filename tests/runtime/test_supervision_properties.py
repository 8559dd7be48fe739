"""The supervisor's decisions, pure: restart budget, rebuilt lifecycle, escalation, the probe timeout's owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import transition
from vmcp_actors.backend.lifecycle_messages import Connect, Now, Start
from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, LifecyclePolicy, State
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.errors import ValidationError
from vmcp_actors.health.probe_schedule import NO_PROBE_TIMEOUT
from vmcp_actors.runtime.supervision import (
    GiveUp,
    RestartAfter,
    RestartPolicy,
    backend_policy,
    decide_restart,
    failed_lifecycle,
    rebuilt_lifecycle,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

policies = st.builds(
    RestartPolicy,
    max_restarts=st.integers(min_value=0, max_value=6),
    window=st.floats(min_value=1.0, max_value=600.0),
    backoff=st.just(Backoff(initial=0.1, maximum=5.0, factor=2.0, jitter=0.2)),
)
gaps = st.lists(st.floats(min_value=0.0, max_value=200.0), min_size=1, max_size=30)
draws = st.floats(min_value=0.0, max_value=0.999)


@given(policies, gaps, draws)
def test_no_more_than_the_budget_is_spent_within_any_window(
    policy: RestartPolicy, gaps: list[float], draw: float
) -> None:
    """Crashes arrive after arbitrary gaps; the supervisor restarts until the budget says stop."""
    restarts: tuple[float, ...] = ()
    spent: list[float] = []
    now = 1000.0
    for gap in gaps:
        now += gap
        recent_before = [t for t in restarts if now - t < policy.window]
        decision = decide_restart(restarts, now, policy, draw, "boom")
        if isinstance(decision, GiveUp):
            assert len(recent_before) >= policy.max_restarts  # gives up only with the budget spent
            assert f"crashed {len(recent_before) + 1} times" in decision.reason
            assert "boom" in decision.reason
            break
        assert len(recent_before) < policy.max_restarts
        assert decision.count == len(recent_before) + 1
        base = policy.backoff.base_delay(decision.count)
        assert base <= decision.delay <= policy.backoff.maximum
        restarts = decision.restarts
        spent.append(now)
        assert all(now - t < policy.window for t in restarts)  # older restarts are forgotten
    for moment in spent:  # in every window-long span, at most the budget
        assert sum(1 for t in spent if moment <= t < moment + policy.window) <= policy.max_restarts


@given(policies, draws)
def test_a_crash_after_a_quiet_window_is_restarted_whatever_came_before(policy: RestartPolicy, draw: float) -> None:
    crowded = tuple(float(t) for t in range(policy.max_restarts))
    decision = decide_restart(crowded, crowded[-1] + policy.window if crowded else 0.0, policy, draw, "x")
    assert isinstance(decision, RestartAfter) == (policy.max_restarts > 0)


failures = st.builds(Failure, kind=st.sampled_from(list(FailureKind)), message=st.text(max_size=20))
lifecycles = st.builds(
    Lifecycle,
    name=st.just("one"),
    remote=st.booleans(),
    state=st.sampled_from(list(State)),
    health=st.sampled_from(list(Health)),
    attempt=st.integers(min_value=0, max_value=50),
    want_running=st.booleans(),
    restart_pending=st.booleans(),
    consecutive_failures=st.integers(min_value=0, max_value=20),
    transient_failures=st.integers(min_value=0, max_value=20),
    probe_failures=st.integers(min_value=0, max_value=5),
    probe_in_flight=st.booleans(),
    last_attempt_at=st.none() | st.just(T0),
    next_retry_at=st.none() | st.floats(min_value=0, max_value=1e6),
    timer_token=st.integers(min_value=0, max_value=50),
    last_error=st.none() | failures,
    tool_names=st.lists(st.text(min_size=1, max_size=8), max_size=3).map(tuple),
)


@given(lifecycles, st.booleans())
def test_a_rebuilt_actor_keeps_counters_and_intent_but_no_session(old: Lifecycle, remote: bool) -> None:
    new = rebuilt_lifecycle(old, remote)
    assert new.state is State.UNKNOWN
    assert not new.want_running  # the supervisor starts it if the old one wanted to run
    assert not new.probe_in_flight
    assert not new.restart_pending
    assert new.remote == remote
    assert (new.attempt, new.consecutive_failures, new.transient_failures) == (
        old.attempt,
        old.consecutive_failures,
        old.transient_failures,
    )
    assert (new.last_error, new.last_attempt_at, new.tool_names) == (
        old.last_error,
        old.last_attempt_at,
        old.tool_names,
    )
    assert new.timer_token > old.timer_token  # timers the dead actor left behind are stale
    after, effects = transition(new, Start(), Now(monotonic=0.0, wall=T0 + timedelta(seconds=1)))
    connects = [e for e in effects if isinstance(e, Connect)]
    assert connects
    assert connects[0].attempt > old.attempt  # results of the dead actor's attempts are stale
    assert after.state is State.STARTING


@given(lifecycles, st.text(min_size=1, max_size=40))
def test_a_backend_given_up_on_reads_failed_for_the_reason(old: Lifecycle, reason: str) -> None:
    failed = failed_lifecycle(old, reason)
    assert (failed.state, failed.health) == (State.FAILED, Health.UNHEALTHY)
    assert failed.last_error == Failure(FailureKind.PROTOCOL, reason)
    assert (failed.attempt, failed.tool_names) == (old.attempt, old.tool_names)


@given(
    st.floats(min_value=0.0, max_value=29.0),
    st.none() | st.builds(LifecyclePolicy, probe_timeout=st.floats(min_value=0.1, max_value=100.0)),
)
def test_failure_handling_owns_the_probe_timeout_whatever_policy_is_passed(
    timeout: float, policy: LifecyclePolicy | None
) -> None:
    applied = backend_policy(policy, HealthConfig(check_interval=30.0, timeout=timeout))
    assert applied.probe_timeout == (timeout if timeout > 0 else NO_PROBE_TIMEOUT)
    base = policy or LifecyclePolicy()
    assert (applied.backoff, applied.unreachable_threshold, applied.restart_grace) == (
        base.backoff,
        base.unreachable_threshold,
        base.restart_grace,
    )


def test_a_restart_policy_rejects_a_budget_that_cannot_be_right() -> None:
    with pytest.raises(ValidationError, match=r"restartPolicy\.maxRestarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ValidationError, match=r"restartPolicy\.window"):
        RestartPolicy(window=0.0)
