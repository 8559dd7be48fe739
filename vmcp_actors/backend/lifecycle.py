"""The backend lifecycle as a pure state machine: muster's rules, minus its flaws.

``transition(lifecycle, input, now)`` returns the next immutable
:class:`~vmcp_actors.backend.lifecycle_state.Lifecycle` and the effects the actor shell
must perform (connect, keep or discard a session, close, schedule a timer, call the auth
hook, publish an event), in order.  Nothing here touches the network, a clock or a
thread, so every rule is checked by hypothesis over random event sequences.  The values
are in :mod:`~vmcp_actors.backend.lifecycle_state`, the inputs and effects in
:mod:`~vmcp_actors.backend.lifecycle_messages`.

Where this differs from muster on purpose:

* **Serialised commands.**  Start, Stop, Restart and results arrive as messages to one
  actor, so two Starts cannot race, and a Stop during a Start wins: every connect carries
  an *attempt id* and a result from an attempt that is no longer current is ignored (a
  session it opened is discarded).
* **Self-scheduled retries.**  A failure schedules its own retry when the backoff
  expires (no 30 s tick), with bounded jitter, and stdio failures are retried too.
* **Typed classification.**  Failures arrive already classified by exception type and
  HTTP status (:mod:`vmcp_actors.backend.classify`); only remote transient failures count
  toward ``unreachable``.
* **401 resets the counters** and calls the auth hook *before* the state is published.
  muster never retries it; here it is retried at once when the credentials change (the
  actor watches the token) and otherwise on a slow backoff, so a rotated token recovers
  without a restart.
* **Dead sessions reconnect.**  A session the server dropped (muster #999) or a probe
  failing repeatedly closes the session and reconnects at once instead of reporting
  healthy forever.
* **Probes never overlap.**  A probe requested while one is in flight joins it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import assert_never

import attrs

from vmcp_actors.backend.failures import Failure, FailureKind
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
    Input,
    LifecycleEvent,
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

__all__ = ["transition"]

_Result = tuple[Lifecycle, tuple[Effect, ...]]


def transition(lc: Lifecycle, event: Input, now: Now, policy: LifecyclePolicy | None = None) -> _Result:
    """The next lifecycle and the effects to perform, in order."""
    p = policy or LifecyclePolicy()
    match event:
        case Start() | Stop() | Restart() | Reconfigure():
            return _command(lc, event, now, p)
        case ConnectSucceeded() | ConnectFailed() | Closed() | SessionLost():
            return _connection_report(lc, event, now, p)
        case RetryDue() | RestartDue():
            return _timer_due(lc, event, now)
        case CredentialsChanged():
            return _credentials_changed(lc, now)
        case ProbeRequested() | ProbeSucceeded() | ProbeFailed():
            return _probe_report(lc, event, now, p)
        case _:
            assert_never(event)


def _command(lc: Lifecycle, event: Start | Stop | Restart | Reconfigure, now: Now, p: LifecyclePolicy) -> _Result:
    match event:
        case Start():
            return _start(attrs.evolve(lc, want_running=True, restart_pending=False), now)
        case Stop():
            return _stop(lc, now)
        case Restart():
            return _restart(lc, now, p)
        case Reconfigure():
            return _reconfigure(lc, event, now, p)
        case _:
            assert_never(event)


def _connection_report(
    lc: Lifecycle, event: ConnectSucceeded | ConnectFailed | Closed | SessionLost, now: Now, p: LifecyclePolicy
) -> _Result:
    match event:
        case ConnectSucceeded():
            return _connect_succeeded(lc, event, now)
        case ConnectFailed():
            return _connect_failed(lc, event, now, p)
        case Closed():
            return _closed(lc, event, now, p)
        case SessionLost():
            if event.attempt != lc.attempt or not lc.state.active:
                return lc, ()
            return _session_lost(lc, event.failure, now, p)
        case _:
            assert_never(event)


def _timer_due(lc: Lifecycle, event: RetryDue | RestartDue, now: Now) -> _Result:
    if event.token != lc.timer_token:
        return lc, ()  # superseded by a later command or result
    match event:
        case RetryDue():
            if not lc.want_running or lc.state not in (State.FAILED, State.UNREACHABLE, State.AUTH_REQUIRED):
                return lc, ()
            return _start(lc, now)
        case RestartDue():
            if not lc.restart_pending:
                return lc, ()
            return _start(attrs.evolve(lc, restart_pending=False), now)
        case _:
            assert_never(event)


def _probe_report(
    lc: Lifecycle, event: ProbeRequested | ProbeSucceeded | ProbeFailed, now: Now, p: LifecyclePolicy
) -> _Result:
    match event:
        case ProbeRequested():
            return _probe_requested(lc, p)
        case ProbeSucceeded():
            return _probe_succeeded(lc, event, now)
        case ProbeFailed():
            return _probe_failed(lc, event, now, p)
        case _:
            assert_never(event)


# --------------------------------------------------------------------------- rules


def _move(
    lc: Lifecycle, state: State, health: Health, now: Now, error: Failure | None = None, **changes: object
) -> _Result:
    """Change state/health; publish an event only if either actually changed."""
    new = attrs.evolve(lc, state=state, health=health, **changes)  # type: ignore[arg-type]
    if (lc.state, lc.health) == (state, health):
        return new, ()
    event = LifecycleEvent(
        name=lc.name,
        old_state=lc.state,
        new_state=state,
        old_health=lc.health,
        health=health,
        error=error.message if error else "",
        at=now.wall,
    )
    return new, (Publish(event),)


def _start(lc: Lifecycle, now: Now) -> _Result:
    if lc.state.active or lc.state is State.STARTING:
        return lc, ()  # already running or connecting: a second Start changes nothing
    if lc.state is State.STOPPING:
        return lc, ()  # want_running is set; the Closed of the stop starts us again
    attempt = lc.attempt + 1
    new, published = _move(
        lc,
        State.STARTING,
        Health.UNKNOWN,
        now,
        attempt=attempt,
        last_attempt_at=now.wall,
        timer_token=lc.timer_token + 1,  # any scheduled retry is now obsolete
        probe_in_flight=False,
        probe_failures=0,
    )
    return new, (*published, Connect(attempt))


def _stop(lc: Lifecycle, now: Now) -> _Result:
    if lc.state.stopped or lc.state is State.STOPPING:
        return attrs.evolve(lc, want_running=False, restart_pending=False), ()
    # A new timer token makes any scheduled retry or restart obsolete.
    lc = attrs.evolve(lc, want_running=False, restart_pending=False, timer_token=lc.timer_token + 1)
    if lc.state.active or lc.state is State.STARTING:
        new, published = _move(lc, State.STOPPING, lc.health, now, probe_in_flight=False)
        return new, (*published, Close(lc.attempt))
    return _move(lc, lc.stopped_state, Health.UNKNOWN, now, probe_in_flight=False)


def _restart(lc: Lifecycle, now: Now, p: LifecyclePolicy) -> _Result:
    token = lc.timer_token + 1
    lc = attrs.evolve(lc, want_running=True, restart_pending=True, timer_token=token)
    if lc.state.active or lc.state is State.STARTING:
        new, published = _move(lc, State.STOPPING, lc.health, now, probe_in_flight=False)
        return new, (*published, Close(lc.attempt))
    if lc.state is State.STOPPING:
        return lc, ()
    return lc, (ScheduleTimer(p.restart_grace, RestartDue(token)),)


def _reconfigure(lc: Lifecycle, event: Reconfigure, now: Now, p: LifecyclePolicy) -> _Result:
    """A new spec: restart a live or connecting session only if the change needs it (muster).

    A backend that is down stays down, unless ``autoStart`` was just switched on.
    """
    if not event.changed:
        return lc, ()
    lc = attrs.evolve(lc, remote=event.remote)
    if lc.state.active or lc.state in (State.STARTING, State.STOPPING):
        return _restart(lc, now, p)
    if event.auto_start_enabled:
        return _start(attrs.evolve(lc, want_running=True, restart_pending=False), now)
    if lc.state is State.AUTH_REQUIRED and lc.want_running:
        return _start(lc, now)  # new settings may well be new credentials: try them now
    return lc, ()


def _credentials_changed(lc: Lifecycle, now: Now) -> _Result:
    """New credentials for a backend whose old ones were rejected: try them at once."""
    if lc.state is not State.AUTH_REQUIRED or not lc.want_running:
        return lc, ()
    return _start(lc, now)


def _closed(lc: Lifecycle, event: Closed, now: Now, p: LifecyclePolicy) -> _Result:
    if lc.state is not State.STOPPING or event.attempt != lc.attempt:
        return lc, ()
    new, published = _move(lc, lc.stopped_state, Health.UNKNOWN, now)
    if new.restart_pending:
        return new, (*published, ScheduleTimer(p.restart_grace, RestartDue(new.timer_token)))
    if new.want_running:
        started, more = _start(new, now)
        return started, (*published, *more)
    return new, published


def _connect_succeeded(lc: Lifecycle, event: ConnectSucceeded, now: Now) -> _Result:
    """Adopt the session if it is the one the lifecycle waits for; otherwise discard it."""
    if event.attempt != lc.attempt or lc.state is not State.STARTING:
        return lc, (DiscardSession(event.attempt),)  # a Stop or a newer Start overtook it
    new, published = _move(
        lc,
        lc.active_state,
        Health.HEALTHY,
        now,
        consecutive_failures=0,
        transient_failures=0,
        probe_failures=0,
        next_retry_at=None,
        next_retry_wall=None,
        last_error=None,
        tool_names=event.tool_names,
        mcp_revision=event.mcp_revision,
        auth_failures=0,
    )
    return new, (AdoptSession(event.attempt), *published)


def _counts_toward_unreachable(lc: Lifecycle, failure: Failure) -> bool:
    return lc.remote and failure.kind in (FailureKind.TRANSIENT, FailureKind.TIMEOUT, FailureKind.SESSION_LOST)


def _connect_failed(lc: Lifecycle, event: ConnectFailed, now: Now, p: LifecyclePolicy) -> _Result:
    if event.attempt != lc.attempt or lc.state is not State.STARTING:
        return lc, ()
    failure = event.failure
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now, p)
    failures = lc.consecutive_failures + 1
    transient = lc.transient_failures + 1 if _counts_toward_unreachable(lc, failure) else 0
    delay = p.backoff.delay(failures, now.draw)
    token = lc.timer_token + 1
    unreachable = transient >= p.unreachable_threshold
    new, published = _move(
        lc,
        State.UNREACHABLE if unreachable else State.FAILED,
        Health.UNKNOWN if unreachable else Health.UNHEALTHY,
        now,
        error=failure,
        consecutive_failures=failures,
        transient_failures=transient,
        last_error=failure,
        next_retry_at=now.monotonic + delay,
        next_retry_wall=now.wall + timedelta(seconds=delay),
        timer_token=token,
    )
    return new, (*published, ScheduleTimer(delay, RetryDue(token)))


def _auth_required(lc: Lifecycle, failure: Failure, now: Now, p: LifecyclePolicy) -> _Result:
    """A 401: reachable but needs credentials.  Counters reset; retried slowly (or when they change)."""
    closing: tuple[Effect, ...] = (Close(lc.attempt),) if lc.state.active else ()
    auth_failures = lc.auth_failures + 1
    delay = p.auth_retry.delay(auth_failures, now.draw)
    token = lc.timer_token + 1
    new, published = _move(
        lc,
        State.AUTH_REQUIRED,
        Health.UNKNOWN,
        now,
        error=failure,
        consecutive_failures=0,
        transient_failures=0,
        probe_failures=0,
        probe_in_flight=False,
        next_retry_at=now.monotonic + delay,
        next_retry_wall=now.wall + timedelta(seconds=delay),
        last_error=failure,
        timer_token=token,
        auth_failures=auth_failures,
    )
    return new, (*closing, AuthRequired(failure), *published, ScheduleTimer(delay, RetryDue(token)))


def _session_lost(lc: Lifecycle, failure: Failure, now: Now, p: LifecyclePolicy) -> _Result:
    """The open session is gone: publish the failure, clean up, reconnect at once."""
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now, p)
    failed, published = _move(
        lc, State.FAILED, Health.UNHEALTHY, now, error=failure, last_error=failure, probe_in_flight=False
    )
    restarted, more = _start(failed, now)
    return restarted, (*published, Close(lc.attempt), *more)


def _probe_requested(lc: Lifecycle, p: LifecyclePolicy) -> _Result:
    if not lc.state.active:
        return lc, (ProbeSkipped(f"backend is {lc.state.value}"),)
    if lc.probe_in_flight:
        return lc, ()  # joins the probe in flight: its answer serves this request too
    return attrs.evolve(lc, probe_in_flight=True), (Probe(lc.attempt, p.probe_timeout),)


def _probe_succeeded(lc: Lifecycle, event: ProbeSucceeded, now: Now) -> _Result:
    if event.attempt != lc.attempt or not lc.state.active:
        return lc, ()
    return _move(
        lc,
        lc.state,
        Health.HEALTHY,
        now,
        probe_in_flight=False,
        probe_failures=0,
        last_probe_latency=event.latency,
    )


def _probe_failed(lc: Lifecycle, event: ProbeFailed, now: Now, p: LifecyclePolicy) -> _Result:
    if event.attempt != lc.attempt or not lc.state.active:
        return lc, ()
    failure = event.failure
    if failure.kind is FailureKind.SESSION_LOST:
        return _session_lost(lc, failure, now, p)
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now, p)
    probe_failures = lc.probe_failures + 1
    if probe_failures >= p.probe_failures_before_reconnect:
        return _session_lost(lc, failure, now, p)
    return _move(
        lc,
        lc.state,
        Health.UNHEALTHY,
        now,
        error=failure,
        probe_in_flight=False,
        probe_failures=probe_failures,
        last_error=failure,
    )
