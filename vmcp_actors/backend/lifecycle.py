"""The backend lifecycle as a pure state machine: muster's rules, minus its flaws.

``transition(lifecycle, input, now)`` returns the next immutable :class:`Lifecycle` and
the effects the actor shell must perform (connect, close, schedule a timer, call the
auth hook, publish an event), in order.  Nothing here touches the network, a clock or a
thread, so every rule is checked by hypothesis over random event sequences.

Where this differs from muster on purpose:

* **Serialised commands.**  Start, Stop, Restart and results arrive as messages to one
  actor, so two Starts cannot race, and a Stop during a Start wins: every connect carries
  an *attempt id* and a result from an attempt that is no longer current is ignored.
* **Self-scheduled retries.**  A failure schedules its own retry when the backoff
  expires (no 30 s tick), with bounded jitter, and stdio failures are retried too.
* **Typed classification.**  Failures arrive already classified by exception type and
  HTTP status (:mod:`vmcp_actors.backend.failures`); only remote transient failures count toward
  ``unreachable``.
* **401 resets the counters** and calls the auth hook *before* the state is published.
* **Dead sessions reconnect.**  A session the server dropped (muster #999) or a probe
  failing repeatedly closes the session and reconnects at once instead of reporting
  healthy forever.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.config.health_settings import DEFAULT_HEALTH_CHECK_TIMEOUT as DEFAULT_HEALTH_TIMEOUT

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_PROBE_TIMEOUT",
    "MAX_BACKOFF",
    "RESTART_GRACE_PERIOD",
    "UNREACHABLE_THRESHOLD",
    "AuthRequired",
    "Close",
    "Closed",
    "Connect",
    "ConnectFailed",
    "ConnectSucceeded",
    "Health",
    "Lifecycle",
    "LifecycleEvent",
    "LifecyclePolicy",
    "Now",
    "Probe",
    "ProbeFailed",
    "ProbeRequested",
    "ProbeSkipped",
    "ProbeSucceeded",
    "Publish",
    "Restart",
    "RestartDue",
    "RetryDue",
    "ScheduleTimer",
    "SessionLost",
    "Start",
    "State",
    "Stop",
    "transition",
]

#: muster ``UnreachableThreshold``.
UNREACHABLE_THRESHOLD: Final = 3
#: muster ``InitialBackoff`` (configurable here, as muster's env override allows).
INITIAL_BACKOFF: Final = 30.0
#: muster ``MaxBackoff``.
MAX_BACKOFF: Final = 30 * 60.0
#: Jitter muster lacks: up to 10 % added, never past the cap, never below the base delay.
BACKOFF_JITTER: Final = 0.1
DEFAULT_BACKOFF: Final = Backoff(initial=INITIAL_BACKOFF, maximum=MAX_BACKOFF, factor=2.0, jitter=BACKOFF_JITTER)
#: muster ``RestartGracePeriod``.
RESTART_GRACE_PERIOD: Final = 0.2
#: Probe timeout (MCP ping): the health monitor's default, defined once in config.health_settings.
DEFAULT_PROBE_TIMEOUT: Final = DEFAULT_HEALTH_TIMEOUT
#: Consecutive failed probes after which the session is presumed dead (muster PR #1187).
PROBE_FAILURES_BEFORE_RECONNECT: Final = 3


class State(enum.StrEnum):
    """muster's service states used by an MCP server."""

    UNKNOWN = "unknown"
    STARTING = "starting"
    RUNNING = "running"  # stdio, session open
    CONNECTED = "connected"  # remote, session open
    STOPPING = "stopping"
    STOPPED = "stopped"  # stdio, stopped on request
    DISCONNECTED = "disconnected"  # remote, stopped on request
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # remote, too many transient failures in a row
    AUTH_REQUIRED = "auth_required"  # remote answered 401

    @property
    def active(self) -> bool:
        """muster ``IsActiveState``: a session is open."""
        return self in (State.RUNNING, State.CONNECTED)

    @property
    def stopped(self) -> bool:
        return self in (State.STOPPED, State.DISCONNECTED)

    @property
    def session_gone(self) -> bool:
        """No usable session: the health rules treat these as unhealthy at once."""
        return self in (State.FAILED, State.UNREACHABLE, State.STOPPED, State.DISCONNECTED)


class Health(enum.StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    CHECKING = "checking"


@attrs.frozen
class LifecyclePolicy:
    """The numbers; defaults are muster's, the backoff's initial delay is configurable."""

    backoff: Backoff = DEFAULT_BACKOFF
    unreachable_threshold: int = UNREACHABLE_THRESHOLD
    restart_grace: float = RESTART_GRACE_PERIOD
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    probe_failures_before_reconnect: int = PROBE_FAILURES_BEFORE_RECONNECT


@attrs.frozen
class Now:
    """The moment an input is handled: monotonic seconds, wall time, a jitter draw in [0, 1)."""

    monotonic: float
    wall: datetime
    draw: float = 0.5


# --------------------------------------------------------------------------- inputs


@attrs.frozen
class Start:
    """Connect (muster ``Start``); a no-op while starting or active."""


@attrs.frozen
class Stop:
    """Close the session and stay down until the next Start (muster ``Stop``; never fails)."""


@attrs.frozen
class Restart:
    """Stop, wait the grace period, Start (muster ``Restart``)."""


@attrs.frozen
class ConnectSucceeded:
    attempt: int
    tool_names: tuple[str, ...] = ()


@attrs.frozen
class ConnectFailed:
    attempt: int
    failure: Failure


@attrs.frozen
class Closed:
    """The shell finished closing everything of ``attempt``."""

    attempt: int


@attrs.frozen
class SessionLost:
    """An open session died on its own (process exited, server forgot the session)."""

    attempt: int
    failure: Failure


@attrs.frozen
class RetryDue:
    token: int


@attrs.frozen
class RestartDue:
    token: int


@attrs.frozen
class ProbeRequested:
    """Check the session with an MCP ping."""


@attrs.frozen
class ProbeSucceeded:
    attempt: int
    latency: float


@attrs.frozen
class ProbeFailed:
    attempt: int
    failure: Failure


Input = (
    Start
    | Stop
    | Restart
    | ConnectSucceeded
    | ConnectFailed
    | Closed
    | SessionLost
    | RetryDue
    | RestartDue
    | ProbeRequested
    | ProbeSucceeded
    | ProbeFailed
)


# --------------------------------------------------------------------------- effects


@attrs.frozen
class Connect:
    """Open a session for ``attempt`` within ``timeout``; report ConnectSucceeded/Failed."""

    attempt: int


@attrs.frozen
class Close:
    """Make sure nothing of ``attempt`` stays open (cancel the connect, close the
    session, reap the process); then report Closed(attempt)."""

    attempt: int


@attrs.frozen
class ScheduleTimer:
    """Deliver ``message`` after ``delay`` seconds."""

    delay: float
    message: RetryDue | RestartDue


@attrs.frozen
class Probe:
    attempt: int
    timeout: float


@attrs.frozen
class ProbeSkipped:
    reason: str


@attrs.frozen
class AuthRequired:
    """Call the auth-required hook; always emitted before the Publish it explains."""

    failure: Failure


@attrs.frozen
class LifecycleEvent:
    """A state or health change, as subscribers see it."""

    name: str
    old_state: State
    new_state: State
    old_health: Health
    health: Health
    error: str
    at: datetime


@attrs.frozen
class Publish:
    event: LifecycleEvent


Effect = Connect | Close | ScheduleTimer | Probe | ProbeSkipped | AuthRequired | Publish


# --------------------------------------------------------------------------- state


@attrs.frozen
class Lifecycle:
    """Everything the actor knows about one backend; also its read-only snapshot."""

    name: str
    remote: bool
    state: State = State.UNKNOWN
    health: Health = Health.UNKNOWN
    attempt: int = 0
    want_running: bool = False
    restart_pending: bool = False
    consecutive_failures: int = 0
    transient_failures: int = 0
    probe_failures: int = 0
    probe_in_flight: bool = False
    last_attempt_at: datetime | None = None
    next_retry_at: float | None = None
    next_retry_wall: datetime | None = None
    timer_token: int = 0
    last_error: Failure | None = None
    last_probe_latency: float | None = None
    tool_names: tuple[str, ...] = ()

    @property
    def unreachable(self) -> bool:
        return self.state is State.UNREACHABLE

    @property
    def client_ready(self) -> bool:
        return self.state.active

    @property
    def active_state(self) -> State:
        return State.CONNECTED if self.remote else State.RUNNING

    @property
    def stopped_state(self) -> State:
        return State.DISCONNECTED if self.remote else State.STOPPED


# --------------------------------------------------------------------------- transitions

_Result = tuple[Lifecycle, tuple[Effect, ...]]


def transition(lc: Lifecycle, event: Input, now: Now, policy: LifecyclePolicy | None = None) -> _Result:
    """The next lifecycle and the effects to perform, in order."""
    p = policy or LifecyclePolicy()
    if isinstance(event, Start):
        return _start(attrs.evolve(lc, want_running=True, restart_pending=False), now)
    if isinstance(event, Stop):
        return _stop(lc, now)
    if isinstance(event, Restart):
        return _restart(lc, now, p)
    if isinstance(event, Closed):
        return _closed(lc, event, now, p)
    if isinstance(event, ConnectSucceeded):
        return _connect_succeeded(lc, event, now)
    if isinstance(event, ConnectFailed):
        return _connect_failed(lc, event, now, p)
    if isinstance(event, SessionLost):
        if event.attempt != lc.attempt or not lc.state.active:
            return lc, ()
        return _session_lost(lc, event.failure, now)
    if isinstance(event, RetryDue):
        if event.token != lc.timer_token or not lc.want_running or lc.state not in (State.FAILED, State.UNREACHABLE):
            return lc, ()
        return _start(lc, now)
    if isinstance(event, RestartDue):
        if event.token != lc.timer_token or not lc.restart_pending:
            return lc, ()
        return _start(attrs.evolve(lc, restart_pending=False), now)
    if isinstance(event, ProbeRequested):
        return _probe_requested(lc, p)
    if isinstance(event, ProbeSucceeded):
        return _probe_succeeded(lc, event, now)
    return _probe_failed(lc, event, now, p)


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
    if event.attempt != lc.attempt or lc.state is not State.STARTING:
        return lc, ()  # a Stop or a newer Start overtook this attempt; the shell closes it
    return _move(
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
    )


def _counts_toward_unreachable(lc: Lifecycle, failure: Failure) -> bool:
    return lc.remote and failure.kind in (FailureKind.TRANSIENT, FailureKind.TIMEOUT, FailureKind.SESSION_LOST)


def _connect_failed(lc: Lifecycle, event: ConnectFailed, now: Now, p: LifecyclePolicy) -> _Result:
    if event.attempt != lc.attempt or lc.state is not State.STARTING:
        return lc, ()
    failure = event.failure
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now)
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


def _auth_required(lc: Lifecycle, failure: Failure, now: Now) -> _Result:
    """A 401: reachable but needs credentials.  Counters reset; never retried by itself."""
    closing: tuple[Effect, ...] = (Close(lc.attempt),) if lc.state.active else ()
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
        next_retry_at=None,
        next_retry_wall=None,
        last_error=failure,
        timer_token=lc.timer_token + 1,
    )
    return new, (*closing, AuthRequired(failure), *published)


def _session_lost(lc: Lifecycle, failure: Failure, now: Now) -> _Result:
    """The open session is gone: publish the failure, clean up, reconnect at once."""
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now)
    failed, published = _move(
        lc, State.FAILED, Health.UNHEALTHY, now, error=failure, last_error=failure, probe_in_flight=False
    )
    restarted, more = _start(failed, now)
    return restarted, (*published, Close(lc.attempt), *more)


def _probe_requested(lc: Lifecycle, p: LifecyclePolicy) -> _Result:
    if not lc.state.active:
        return lc, (ProbeSkipped(f"backend is {lc.state.value}"),)
    if lc.probe_in_flight:
        return lc, (ProbeSkipped("a probe is already in flight"),)
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
        return _session_lost(lc, failure, now)
    if failure.kind is FailureKind.AUTH_REQUIRED:
        return _auth_required(lc, failure, now)
    probe_failures = lc.probe_failures + 1
    if probe_failures >= p.probe_failures_before_reconnect:
        return _session_lost(lc, failure, now)
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
