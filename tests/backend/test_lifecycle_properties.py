"""Hypothesis over the pure backend lifecycle: random event sequences keep every invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

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
    Effect,
    Now,
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

KINDS = list(FailureKind)
T0 = datetime(2026, 1, 1, tzinfo=UTC)

_TRANSIENT_KINDS = [FailureKind.TRANSIENT, FailureKind.TIMEOUT, FailureKind.SESSION_LOST]
# Each step is (roll, kind, stale); the roll picks the action with fixed weights, so runs
# mostly answer what the lifecycle waits for ("auto": a connect result, a due retry, a
# close) and reach the deep states, interleaved with arbitrary commands and stale results.
_WEIGHTS: list[tuple[int, str]] = [
    (50, "auto"),
    (6, "start"),
    (4, "stop"),
    (4, "restart"),
    (4, "connect_ok"),
    (6, "connect_fail"),
    (3, "closed"),
    (3, "session_lost"),
    (6, "retry_due"),
    (3, "restart_due"),
    (4, "probe"),
    (3, "probe_ok"),
    (4, "probe_fail"),
    (4, "reconfigure"),
    (3, "credentials_changed"),
]
_TOTAL = sum(weight for weight, _ in _WEIGHTS)
kinds = st.one_of(st.sampled_from(_TRANSIENT_KINDS), st.sampled_from([None, *KINDS]))
actions = st.tuples(st.integers(0, _TOTAL - 1), kinds, st.integers(0, 3)).map(lambda t: _pick(*t))


def _pick(roll: int, kind: FailureKind | None, stale_roll: int) -> tuple[object, ...]:
    stale = stale_roll == 0  # one in four results comes from an overtaken attempt
    name = _WEIGHTS[-1][1]
    for weight, candidate in _WEIGHTS:
        if roll < weight:
            name = candidate
            break
        roll -= weight
    some_kind = kind or FailureKind.TRANSIENT
    table: dict[str, tuple[object, ...]] = {
        "auto": ("auto", kind),
        "start": ("start",),
        "stop": ("stop",),
        "restart": ("restart",),
        "connect_ok": ("connect_ok", stale),
        "connect_fail": ("connect_fail", some_kind, stale),
        "closed": ("closed", stale),
        "session_lost": ("session_lost", some_kind),
        "retry_due": ("retry_due", stale),
        "restart_due": ("restart_due", stale),
        "probe": ("probe",),
        "probe_ok": ("probe_ok",),
        "probe_fail": ("probe_fail", some_kind),
        "reconfigure": ("reconfigure", not stale, kind is None),
        "credentials_changed": ("credentials_changed",),
    }
    return table[name]


def to_input(lc: Lifecycle, action: tuple[object, ...]) -> object:
    if action[0] == "auto":
        action = _auto(lc, action[1])
    name = action[0]
    stale_attempt = max(lc.attempt - 1, 0)
    if name == "start":
        return Start()
    if name == "stop":
        return Stop()
    if name == "restart":
        return Restart()
    if name == "connect_ok":
        return ConnectSucceeded(stale_attempt if action[1] else lc.attempt, ("echo",))
    if name == "connect_fail":
        kind = action[1]
        assert isinstance(kind, FailureKind)
        return ConnectFailed(stale_attempt if action[2] else lc.attempt, Failure(kind, f"{kind.value} failure"))
    if name == "closed":
        return Closed(stale_attempt if action[1] else lc.attempt)
    if name == "session_lost":
        kind = action[1]
        assert isinstance(kind, FailureKind)
        return SessionLost(lc.attempt, Failure(kind, "gone"))
    if name == "retry_due":
        return RetryDue(lc.timer_token - 1 if action[1] else lc.timer_token)
    if name == "restart_due":
        return RestartDue(lc.timer_token - 1 if action[1] else lc.timer_token)
    if name == "probe":
        return ProbeRequested()
    if name == "probe_ok":
        return ProbeSucceeded(lc.attempt, 0.01)
    if name == "reconfigure":
        return Reconfigure(changed=bool(action[1]), remote=lc.remote, auto_start_enabled=bool(action[2]))
    if name == "credentials_changed":
        return CredentialsChanged()
    kind = action[1]
    assert isinstance(kind, FailureKind)
    return ProbeFailed(lc.attempt, Failure(kind, "probe failed"))


def _auto(lc: Lifecycle, kind: object) -> tuple[object, ...]:
    if lc.state is State.STARTING:
        return ("connect_ok", False) if kind is None else ("connect_fail", kind, False)
    if lc.state in (State.FAILED, State.UNREACHABLE):
        return ("retry_due", False)
    if lc.state is State.AUTH_REQUIRED:
        return ("retry_due", False) if kind is None else ("credentials_changed",)
    if lc.state is State.STOPPING:
        return ("closed", False)
    if lc.state.active:
        return ("probe_ok",) if kind is None else ("probe_fail", kind)
    return ("start",)


@settings(max_examples=200, deadline=None)
@given(
    remote=st.booleans(),
    steps=st.lists(
        st.tuples(actions, st.floats(min_value=0, max_value=120), st.floats(0, 1, exclude_max=True)),
        min_size=20,
        max_size=120,
    ),
)
def test_random_event_sequences_keep_the_invariants(
    remote: bool, steps: list[tuple[tuple[object, ...], float, float]]
) -> None:
    policy = LifecyclePolicy()
    backoff = policy.backoff
    lc = Lifecycle(name="b", remote=remote)
    mono, wall = 100.0, T0
    streak = 0  # consecutive transient remote connect failures, the reference model
    open_attempts: set[int] = set()
    last_connect = 0
    retry_delays: list[float] = []  # within the current failure run
    published_state = lc.state

    for action, elapsed, draw in steps:
        mono += elapsed
        wall += timedelta(seconds=elapsed)
        event = to_input(lc, action)
        before = lc
        lc, effects = transition(before, event, Now(mono, wall, draw), policy)  # type: ignore[arg-type]

        # --- a result from an attempt that is no longer current changes nothing
        # (a session it opened is discarded)
        attempt = getattr(event, "attempt", None)
        if attempt is not None and attempt != before.attempt:
            leftover = (DiscardSession(attempt),) if isinstance(event, ConnectSucceeded) else ()
            assert (lc, effects) == (before, leftover)

        # --- every opened session is either adopted, before anyone hears of it, or discarded
        if isinstance(event, ConnectSucceeded):
            fates = [e for e in effects if isinstance(e, (AdoptSession, DiscardSession))]
            adopted = event.attempt == before.attempt and before.state is State.STARTING
            assert fates == [AdoptSession(event.attempt) if adopted else DiscardSession(event.attempt)]
            assert effects.index(fates[0]) == 0

        # --- a config change is a restart, a start or nothing (muster ``ConfigurationChanged``)
        if isinstance(event, Reconfigure):
            _check_reconfigure(before, event, lc, effects, Now(mono, wall, draw), policy)

        # --- the reference model of "consecutive transient remote failures"
        current = isinstance(event, (ConnectSucceeded, ConnectFailed)) and (
            event.attempt == before.attempt and before.state is State.STARTING
        )
        if current and isinstance(event, ConnectSucceeded):
            streak = 0
        elif current and isinstance(event, ConnectFailed):
            kind = event.failure.kind
            if kind is FailureKind.AUTH_REQUIRED:
                streak = 0
            elif remote and kind in (FailureKind.TRANSIENT, FailureKind.TIMEOUT, FailureKind.SESSION_LOST):
                streak += 1
            else:
                streak = 0
        if lc.state is State.AUTH_REQUIRED and before.state is not State.AUTH_REQUIRED:
            streak = 0
        assert lc.transient_failures == streak
        if current and isinstance(event, ConnectFailed) and event.failure.kind is not FailureKind.AUTH_REQUIRED:
            assert (lc.state is State.UNREACHABLE) == (remote and streak >= 3)
        if lc.state is State.UNREACHABLE:
            assert remote
            assert streak >= 3

        # --- success resets
        if current and isinstance(event, ConnectSucceeded):
            assert lc.consecutive_failures == 0
            assert lc.next_retry_at is None
            assert lc.health is Health.HEALTHY
            assert lc.state is (State.CONNECTED if remote else State.RUNNING)
            retry_delays.clear()

        # --- backoff: within bounds, monotone until capped, per failure run
        if lc.consecutive_failures == 0:
            retry_delays.clear()  # a success or a 401 ends the run
        for effect in effects:
            if isinstance(effect, ScheduleTimer) and isinstance(effect.message, RetryDue):
                if lc.state is State.AUTH_REQUIRED:  # a rejected token: the slow auth backoff, its own count
                    auth = policy.auth_retry
                    base = auth.base_delay(lc.auth_failures)
                    assert base <= effect.delay <= min(base * (1 + auth.jitter), auth.maximum)
                    assert lc.next_retry_at == mono + effect.delay
                    continue
                n = lc.consecutive_failures
                base = backoff.base_delay(n)
                assert base <= effect.delay <= min(base * (1 + backoff.jitter), backoff.maximum)
                if retry_delays:
                    assert effect.delay >= retry_delays[-1]
                retry_delays.append(effect.delay)
                assert lc.next_retry_at == mono + effect.delay

        # --- auth_required always has its slow retry pending, and leaves only when told,
        # when that retry comes due, or when the credentials changed; never on its own
        if lc.state is State.AUTH_REQUIRED and before.state is not State.AUTH_REQUIRED:
            assert ScheduleTimer(effects[-1].delay, RetryDue(lc.timer_token)) == effects[-1]  # type: ignore[union-attr]
        commanded_start = isinstance(event, (Start, Restart, RestartDue)) or (
            isinstance(event, Reconfigure) and event.changed and (event.auto_start_enabled or before.want_running)
        )
        retried = (isinstance(event, RetryDue) and event.token == before.timer_token and before.want_running) or (
            isinstance(event, CredentialsChanged) and before.want_running
        )
        if before.state is State.AUTH_REQUIRED:
            connects = [e for e in effects if isinstance(e, Connect)]
            if connects:
                assert commanded_start or retried
            if retried:
                assert (lc.state, connects) == (State.STARTING, [Connect(before.attempt + 1)])
        if current and isinstance(event, ConnectSucceeded):
            assert lc.auth_failures == 0

        # --- nothing leaves a stopped state except a start (Start, a Restart and its timer,
        # a config change that switches autoStart on)
        if before.state.stopped and not commanded_start:
            assert lc.state is before.state
            assert all(isinstance(e, (ProbeSkipped, DiscardSession)) for e in effects)

        # --- one connection attempt at a time, ids increasing
        for effect in effects:
            if isinstance(effect, (Close, DiscardSession)):
                open_attempts.discard(effect.attempt)
            if isinstance(effect, Connect):
                assert effect.attempt > last_connect
                assert not open_attempts, f"connect {effect.attempt} while {open_attempts} still open"
                last_connect = effect.attempt
                open_attempts.add(effect.attempt)
        if current and isinstance(event, ConnectFailed):
            open_attempts.discard(event.attempt)

        # --- the auth hook runs before the state is published
        kinds = [type(e) for e in effects]
        if AuthRequired in kinds:
            publish_index = next(i for i, e in enumerate(effects) if isinstance(e, Publish))
            assert kinds.index(AuthRequired) < publish_index

        # --- published events chain: none lost, none invented
        for effect in effects:
            if isinstance(effect, Publish):
                assert effect.event.old_state is published_state
                published_state = effect.event.new_state
        assert published_state is lc.state
        _check_effects_are_well_formed(effects)


def _check_effects_are_well_formed(effects: tuple[Effect, ...]) -> None:
    for effect in effects:
        if isinstance(effect, ScheduleTimer):
            assert effect.delay >= 0


def _check_reconfigure(
    before: Lifecycle,
    event: Reconfigure,
    lc: Lifecycle,
    effects: tuple[Effect, ...],
    now: Now,
    policy: LifecyclePolicy,
) -> None:
    if not event.changed:
        assert (lc, effects) == (before, ())
        return
    assert lc.remote == event.remote
    live = before.state.active or before.state is State.STARTING
    if live or before.state is State.STOPPING:
        # the old session (or connect) is closed and a new one follows after the grace period
        assert (lc.want_running, lc.restart_pending) == (True, True)
        assert (Close(before.attempt) in effects) == live
        assert not any(isinstance(e, Connect) for e in effects)
        return
    connects = [e for e in effects if isinstance(e, Connect)]
    if event.auto_start_enabled or (before.state is State.AUTH_REQUIRED and before.want_running):
        # autoStart switched on, or new settings (maybe new credentials) for a rejected backend
        assert connects == [Connect(before.attempt + 1)]
        assert lc.want_running
    else:
        assert (lc, effects) == (attrs.evolve(before, remote=event.remote), ())
    assert transition(before, event, now, policy) == (lc, effects)  # deterministic


@settings(max_examples=300, deadline=None)
@given(
    remote=st.booleans(),
    history=st.lists(actions, max_size=30),
    changed=st.booleans(),
    new_remote=st.booleans(),
    auto_start_enabled=st.booleans(),
)
def test_config_changes_from_any_reachable_state(
    remote: bool, history: list[tuple[object, ...]], changed: bool, new_remote: bool, auto_start_enabled: bool
) -> None:
    """Any state a backend can reach, any change (a transport switch too): restart, start or nothing."""
    now = Now(100.0, T0, 0.5)
    policy = LifecyclePolicy()
    lc = Lifecycle(name="b", remote=remote)
    for action in history:
        lc, _ = transition(lc, to_input(lc, action), now, policy)  # type: ignore[arg-type]
    event = Reconfigure(changed=changed, remote=new_remote, auto_start_enabled=auto_start_enabled)
    after, effects = transition(lc, event, now, policy)
    _check_reconfigure(lc, event, after, effects, now, policy)
    # once the old session is closed, the backend comes back on the new transport
    if changed and after.state is State.STOPPING:
        closed, more = transition(after, Closed(after.attempt), now, policy)
        assert closed.state is (State.DISCONNECTED if new_remote else State.STOPPED)
        assert any(isinstance(e, ScheduleTimer) and isinstance(e.message, RestartDue) for e in more)
