"""The backend lifecycle, rule by rule: muster's table and the places we do better."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import transition
from vmcp_actors.backend.lifecycle_messages import (
    AdoptSession,
    AuthRequired,
    Close,
    Closed,
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    CredentialsChanged,
    DiscardSession,
    Input,
    Now,
    Probe,
    ProbeFailed,
    ProbeRequested,
    ProbeSkipped,
    ProbeSucceeded,
    Publish,
    Reconfigure,
    Restart,
    RestartDue,
    RetryDue,
    ScheduleTimer,
    SessionLost,
    Start,
    Stop,
)
from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, LifecyclePolicy, State
from vmcp_actors.config.backend_spec import BackendSpec

NOW = Now(1000.0, datetime(2026, 1, 1, tzinfo=UTC), draw=0.0)
TRANSIENT = Failure(FailureKind.TRANSIENT, "connection refused")
POLICY = LifecyclePolicy()


def run(lc: Lifecycle, *events: Input) -> tuple[Lifecycle, list[object]]:
    effects: list[object] = []
    for event in events:
        lc, produced = transition(lc, event, NOW, POLICY)
        effects.extend(produced)
    return lc, effects


def started(remote: bool = True) -> Lifecycle:
    lc, _ = run(Lifecycle("b", remote=remote), Start())
    return lc


def connected(remote: bool = True) -> Lifecycle:
    lc = started(remote)
    lc, _ = run(lc, ConnectSucceeded(lc.attempt, ("echo", "add")))
    return lc


def fail(lc: Lifecycle, failure: Failure = TRANSIENT) -> tuple[Lifecycle, list[object]]:
    return run(lc, ConnectFailed(lc.attempt, failure))


def test_start_connects_and_success_is_running_for_stdio_and_connected_for_remote() -> None:
    lc, effects = run(Lifecycle("b", remote=False), Start())
    assert (lc.state, lc.health) == (State.STARTING, Health.UNKNOWN)
    assert effects[-1] == Connect(1)
    lc, effects = run(lc, ConnectSucceeded(1, ("echo",), "2025-11-25"))
    assert (lc.state, lc.health, lc.tool_names) == (State.RUNNING, Health.HEALTHY, ("echo",))
    assert lc.mcp_revision == "2025-11-25"
    assert effects[0] == AdoptSession(1)  # kept before anyone hears of it
    assert connected(remote=True).state is State.CONNECTED


def test_a_second_start_while_starting_or_running_does_nothing() -> None:
    assert run(started(), Start()) == (started(), [])
    assert run(connected(), Start())[1] == []


def test_remote_transient_failures_back_off_exponentially_and_go_unreachable_at_three() -> None:
    lc = started()
    delays = []
    for expected_state in (State.FAILED, State.FAILED, State.UNREACHABLE, State.UNREACHABLE):
        lc, effects = fail(lc)
        assert lc.state is expected_state
        (timer,) = [e for e in effects if isinstance(e, ScheduleTimer)]
        delays.append(timer.delay)
        lc, _ = run(lc, timer.message)  # the retry fires: we start again by ourselves
        assert lc.state is State.STARTING
    assert delays == [30.0, 60.0, 120.0, 240.0]  # draw 0: no jitter; muster's table
    assert lc.consecutive_failures == 4


def test_backoff_is_capped_at_thirty_minutes_with_bounded_jitter() -> None:
    lc = started()
    for _ in range(12):
        lc, effects = transition(lc, ConnectFailed(lc.attempt, TRANSIENT), Now(0.0, NOW.wall, draw=0.99), POLICY)
        (timer,) = [e for e in effects if isinstance(e, ScheduleTimer)]
        lc, _ = run(lc, timer.message)
    assert timer.delay == 1800.0


def test_the_initial_backoff_is_configurable() -> None:
    policy = LifecyclePolicy(backoff=Backoff(initial=1.0, maximum=1800.0, jitter=0.1))
    _lc, effects = transition(started(), ConnectFailed(1, TRANSIENT), NOW, policy)
    assert [e.delay for e in effects if isinstance(e, ScheduleTimer)] == [1.0]


def test_stdio_failures_are_retried_too_but_never_go_unreachable() -> None:
    lc = started(remote=False)
    for _ in range(5):
        lc, effects = fail(lc, Failure(FailureKind.SESSION_LOST, "process exited"))
        assert lc.state is State.FAILED
        assert any(isinstance(e, ScheduleTimer) for e in effects)  # muster never retries stdio
        lc, _ = run(lc, RetryDue(lc.timer_token))
    assert lc.transient_failures == 0


def test_a_non_transient_failure_breaks_the_unreachable_streak() -> None:
    lc = started()
    for failure in (TRANSIENT, TRANSIENT, Failure(FailureKind.CONFIGURATION, "HTTP 404"), TRANSIENT):
        lc, _ = fail(lc, failure)
        lc, _ = run(lc, RetryDue(lc.timer_token))
    lc, _ = fail(lc)
    assert lc.state is State.FAILED  # only 2 consecutive transient failures
    assert lc.consecutive_failures == 5  # but the backoff keeps growing


def test_success_resets_counters_and_retry_time() -> None:
    lc = started()
    lc, _ = fail(lc)
    lc, _ = run(lc, RetryDue(lc.timer_token), ConnectSucceeded(lc.attempt + 1))
    assert (lc.consecutive_failures, lc.transient_failures, lc.next_retry_at, lc.last_error) == (0, 0, None, None)


def test_401_goes_to_auth_required_calls_the_hook_before_publishing_and_resets_counters() -> None:
    lc = started()
    lc, _ = fail(lc)
    lc, _ = run(lc, RetryDue(lc.timer_token))
    unauthorized = Failure(FailureKind.AUTH_REQUIRED, "authentication required", http_status=401)
    lc, effects = fail(lc, unauthorized)
    assert lc.state is State.AUTH_REQUIRED
    assert [type(e) for e in effects] == [AuthRequired, Publish, ScheduleTimer]  # then the slow auth retry
    assert (lc.consecutive_failures, lc.transient_failures) == (0, 0)
    assert effects[-1] == ScheduleTimer(60.0, RetryDue(lc.timer_token))
    assert lc.next_retry_at == NOW.monotonic + 60.0


def test_auth_required_is_retried_slowly_and_at_once_when_the_credentials_change() -> None:
    """Bug: an auth_required backend was never retried, so a fixed token recovered nothing until a restart."""
    lc, _ = fail(started(), Failure(FailureKind.AUTH_REQUIRED, "401"))
    for ignored in (RetryDue(lc.timer_token - 1), ProbeRequested()):  # a stale timer, a probe: nothing
        same, effects = run(lc, ignored)
        assert same.state is State.AUTH_REQUIRED
        assert not any(isinstance(e, Connect) for e in effects)
    again, effects = run(lc, RetryDue(lc.timer_token))  # the slow timer
    assert (again.state, effects[-1]) == (State.STARTING, Connect(lc.attempt + 1))
    rejected_twice, effects = fail(again, Failure(FailureKind.AUTH_REQUIRED, "401"))
    assert effects[-1] == ScheduleTimer(120.0, RetryDue(rejected_twice.timer_token))  # backing off
    rotated, effects = run(rejected_twice, CredentialsChanged())  # a new token: try it now
    assert (rotated.state, effects[-1]) == (State.STARTING, Connect(rejected_twice.attempt + 1))
    back, _ = run(rotated, ConnectSucceeded(rotated.attempt))
    assert (back.state, back.auth_failures) == (State.CONNECTED, 0)
    stopped, _ = run(rejected_twice, Stop())
    assert run(stopped, CredentialsChanged())[1] == []  # stopped stays stopped
    assert run(stopped, RetryDue(rejected_twice.timer_token))[1] == []


def test_stop_during_start_wins_and_the_late_result_is_ignored() -> None:
    lc = started()
    lc, effects = run(lc, Stop())
    assert lc.state is State.STOPPING
    assert effects[-1] == Close(1)
    lc, effects = run(lc, ConnectSucceeded(1, ("late",)))  # muster would overwrite the stop here
    assert (lc.state, effects) == (State.STOPPING, [DiscardSession(1)])
    lc, _ = run(lc, Closed(1))
    assert (lc.state, lc.health) == (State.DISCONNECTED, Health.UNKNOWN)


def test_stop_cancels_a_scheduled_retry() -> None:
    lc, _ = fail(started())
    token = lc.timer_token
    lc, _ = run(lc, Stop())
    assert lc.state is State.DISCONNECTED
    lc, effects = run(lc, RetryDue(token))
    assert (lc.state, effects) == (State.DISCONNECTED, [])


def test_stop_is_lenient_and_idempotent() -> None:
    lc, _effects = run(Lifecycle("b", remote=False), Stop())
    assert lc.state is State.STOPPED
    assert run(lc, Stop()) == (lc, [])


def test_restart_stops_waits_the_grace_period_then_starts() -> None:
    lc, effects = run(connected(), Restart())
    assert lc.state is State.STOPPING
    lc, effects = run(lc, Closed(lc.attempt))
    (timer,) = [e for e in effects if isinstance(e, ScheduleTimer)]
    assert timer.delay == 0.2
    assert isinstance(timer.message, RestartDue)
    lc, effects = run(lc, timer.message)
    assert lc.state is State.STARTING
    assert isinstance(effects[-1], Connect)


def test_a_start_during_stopping_starts_once_the_close_is_done() -> None:
    lc, _ = run(connected(), Stop(), Start())
    assert lc.state is State.STOPPING
    lc, effects = run(lc, Closed(lc.attempt))
    assert lc.state is State.STARTING
    assert isinstance(effects[-1], Connect)


def test_a_dropped_session_is_published_then_reconnected_at_once() -> None:
    lc = connected()
    gone = Failure(FailureKind.SESSION_LOST, "server forgot the session (HTTP 404)", http_status=404)
    lc, effects = run(lc, SessionLost(lc.attempt, gone))
    published = [e.event.new_state for e in effects if isinstance(e, Publish)]
    assert published == [State.FAILED, State.STARTING]
    assert Close(1) in effects
    assert effects[-1] == Connect(2)


def test_probes_never_overlap_and_report_latency() -> None:
    lc = connected()
    lc, effects = run(lc, ProbeRequested())
    assert effects == [Probe(lc.attempt, 10.0)]
    lc, effects = run(lc, ProbeRequested())
    assert effects == []  # joins the ping in flight
    lc, _ = run(lc, ProbeSucceeded(lc.attempt, 2.5))
    assert (lc.health, lc.last_probe_latency, lc.probe_in_flight) == (Health.HEALTHY, 2.5, False)


def test_probe_on_a_backend_without_session_is_skipped() -> None:
    assert run(started(), ProbeRequested())[1] == [ProbeSkipped("backend is starting")]


def test_a_failed_probe_marks_unhealthy_and_three_in_a_row_reconnect() -> None:
    lc = connected()
    timeout = Failure(FailureKind.TIMEOUT, "ping timed out")
    for _ in range(2):
        lc, _ = run(lc, ProbeRequested(), ProbeFailed(lc.attempt, timeout))
        assert (lc.state, lc.health) == (State.CONNECTED, Health.UNHEALTHY)
    lc, effects = run(lc, ProbeRequested(), ProbeFailed(lc.attempt, timeout))
    assert lc.state is State.STARTING
    assert isinstance(effects[-1], Connect)


@pytest.mark.parametrize("kind", [FailureKind.SESSION_LOST])
def test_a_probe_that_finds_the_session_gone_reconnects_at_once(kind: FailureKind) -> None:
    lc = connected()
    lc, _effects = run(lc, ProbeRequested(), ProbeFailed(lc.attempt, Failure(kind, "Missing session ID")))
    assert lc.state is State.STARTING


def test_results_of_an_overtaken_attempt_are_ignored() -> None:
    lc = connected()
    old = lc.attempt
    lc, _ = run(lc, Restart(), Closed(old))
    lc, _ = run(lc, RestartDue(lc.timer_token))
    assert run(lc, ConnectSucceeded(old)) == (lc, [DiscardSession(old)])
    for stale in (
        ConnectFailed(old, TRANSIENT),
        SessionLost(old, TRANSIENT),
        ProbeSucceeded(old, 0.1),
        Closed(old),
    ):
        assert run(lc, stale) == (lc, [])


# ------------------------------------------------------------------ configuration changes


def test_an_unchanged_config_changes_nothing() -> None:
    for lc in (Lifecycle("b", remote=True), started(), connected()):
        assert run(lc, Reconfigure(changed=False, remote=True, auto_start_enabled=True)) == (lc, [])


def test_a_changed_config_restarts_a_live_session() -> None:
    lc, effects = run(connected(remote=False), Reconfigure(changed=True, remote=True))
    assert (lc.state, lc.remote, lc.restart_pending) == (State.STOPPING, True, True)
    assert effects[-1] == Close(1)
    lc, _ = run(lc, Closed(1))
    assert lc.state is State.DISCONNECTED  # the new transport names the stopped state


def test_a_changed_config_leaves_a_stopped_backend_down_unless_auto_start_was_enabled() -> None:
    stopped, _ = run(Lifecycle("b", remote=True), Stop())
    lc, effects = run(stopped, Reconfigure(changed=True, remote=True))
    assert (lc.state, effects) == (State.DISCONNECTED, [])
    lc, effects = run(stopped, Reconfigure(changed=True, remote=True, auto_start_enabled=True))
    assert lc.state is State.STARTING
    assert effects[-1] == Connect(1)


def test_reconfigure_between_specs_follows_config_changed() -> None:
    old = BackendSpec(name="b", type="stdio", command="srv", auto_start=False)
    assert Reconfigure.between(old, attrs.evolve(old, description="x")) == Reconfigure(False, False, False)
    assert Reconfigure.between(old, attrs.evolve(old, auto_start=True)) == Reconfigure(True, False, True)
    remote = BackendSpec(name="b", type="sse", url="http://127.0.0.1:1/sse")
    assert Reconfigure.between(old, remote) == Reconfigure(True, True, True)
