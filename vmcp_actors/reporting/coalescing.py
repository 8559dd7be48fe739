"""What the coalescing reporter decides, as a pure state machine: skip, wait, write, retry, flush.

``step(state, event, now, policy)`` returns the next immutable :class:`CoalescerState` and
the effects the actor shell performs, in order (:class:`Write` the status to the sink,
start or cancel a timer, tell the flush waiters they are done).  The outcome of a
:class:`Write` comes back as the next event (:class:`WriteSucceeded` or
:class:`WriteFailed`).  Nothing here touches a sink, a clock, a thread or a random
number: the shell reads the clock and the sink's rate limiter into :class:`Now` and draws
the jitter into :class:`WriteFailed`, so every rule is checked by hypothesis over random
event sequences.

The rules:

* **Latest wins.**  A status offered while another is pending replaces it (counted as
  coalesced); nothing older is ever written after something newer.
* **Skip what changes nothing.**  A pending status equal to the last one written
  (ignoring its timestamp) is dropped, unless ``resend_unchanged_after`` seconds have
  passed since that write (a periodic re-assert repairs a status someone overwrote).
* **Timestamps alone wait for the interval.**  A pending status that differs from the last
  one written only in when things were checked (``lastHealthCheck``, the build time) is
  held until ``timestamp_only_after`` seconds have passed since that write, then written
  as it is by then; a real change arriving meanwhile cuts the hold short and goes out at
  once.  So a steady state costs one write per interval however many backends are probed.
* **One write at a time.**  Nothing is written while a write is in flight or a timer is
  outstanding; a stale timer (one that is no longer the outstanding one) changes nothing.
* **Wait for a throttled sink on a timer**, so whatever is newest when it is ready is
  what gets written, rather than blocking inside the sink holding an older status.
* **Retry failures** after a capped, jittered exponential backoff; a newer status
  replaces the one being retried and waits out the same backoff.  A failure that got no
  answer at all (the destination is unreachable) is retried after at most
  ``unreachable_retry_max`` seconds: such an attempt costs the destination nothing, and
  the status must land soon after it is back.  Answered failures (an overloaded server)
  keep their own exponential backoff, counted afresh.
* **Flush** cuts a backoff short (one immediate attempt), then reports :class:`FlushDone`
  once nothing is pending.
"""

from __future__ import annotations

from typing import Final, assert_never

import attrs

from vmcp_actors.model.status import Status
from vmcp_actors.reporting.coalescing_values import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_UNREACHABLE_RETRY_MAX,
    CancelTimer,
    CoalescerState,
    CoalescingPolicy,
    Effect,
    Event,
    FlushDone,
    FlushRequested,
    Hold,
    Now,
    Offered,
    ReporterStats,
    RetryLater,
    Rewrite,
    TimerFired,
    WaitForSink,
    Write,
    WriteFailed,
    WriteSucceeded,
)

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_UNREACHABLE_RETRY_MAX",
    "CancelTimer",
    "CoalescerState",
    "CoalescingPolicy",
    "Effect",
    "Event",
    "FlushDone",
    "FlushRequested",
    "Hold",
    "Now",
    "Offered",
    "ReporterStats",
    "RetryLater",
    "Rewrite",
    "TimerFired",
    "WaitForSink",
    "Write",
    "WriteFailed",
    "WriteSucceeded",
    "only_timestamps_differ",
    "step",
]

#: Below this a hold's remaining time is clock noise, not a reason to wait again.
_HOLD_EPSILON: Final = 1e-9

_Step = tuple[CoalescerState, tuple[Effect, ...]]


# --------------------------------------------------------------------------- the rules


def step(state: CoalescerState, event: Event, now: Now, policy: CoalescingPolicy) -> _Step:
    """The next state and the effects to perform, in order."""
    match event:
        case Offered(status=status):
            return _after_take(_take(state, status), now, policy)
        case TimerFired(timer=timer, status=status):
            state = _take(state, status)
            if state.timer == timer:
                state = attrs.evolve(state, timer=None, holding=False)
            return _after_take(state, now, policy)
        case FlushRequested(status=status):
            state = attrs.evolve(_take(state, status), flushing=True)
            cancel: tuple[Effect, ...] = ()
            if state.timer is not None:
                cancel = (CancelTimer(state.timer),)
                state = attrs.evolve(state, timer=None, holding=False)
            state, effects = _advance(state, now, policy)
            return state, cancel + effects
        case Rewrite(status=status):
            forgotten = attrs.evolve(_take(state, status), last_written=None, last_written_at=None)
            return _after_take(forgotten, now, policy)
        case WriteSucceeded():
            return _succeeded(state, now, policy)
        case WriteFailed(error=error, draw=draw, unreachable=unreachable):
            return _failed(state, error, draw, unreachable, policy)
        case _:
            assert_never(event)


def only_timestamps_differ(status: Status, other: Status | None) -> bool:
    """Whether ``status`` says what ``other`` says but for when it was built and when backends were checked."""
    if other is None:
        return False
    return _without_check_times(status) == _without_check_times(other)


def _without_check_times(status: Status) -> Status:
    backends = tuple(attrs.evolve(backend, last_health_check=None) for backend in status.discovered_backends)
    return attrs.evolve(status, timestamp=None, discovered_backends=backends)


def _take(state: CoalescerState, status: Status | None) -> CoalescerState:
    """Make ``status`` the pending one; the one it replaces counts as coalesced."""
    if status is None:
        return state
    replaced = state.pending is not None
    return attrs.evolve(state, pending=status, received=state.received + 1, coalesced=state.coalesced + int(replaced))


def _after_take(state: CoalescerState, now: Now, policy: CoalescingPolicy) -> _Step:
    """Advance, first cutting a timestamp-only hold short if what is pending now is a real change."""
    cancel: tuple[Effect, ...] = ()
    pending = state.pending
    real_change = pending is not None and not only_timestamps_differ(pending, state.last_written)
    if state.holding and state.timer is not None and real_change:
        cancel = (CancelTimer(state.timer),)
        state = attrs.evolve(state, timer=None, holding=False)
    state, effects = _advance(state, now, policy)
    return state, cancel + effects


def _advance(state: CoalescerState, now: Now, policy: CoalescingPolicy) -> _Step:
    """Write the pending status if nothing stands in the way; else skip, hold, wait, or finish a flush."""
    if state.in_flight is not None or state.timer is not None:
        return state, ()
    pending = state.pending
    if pending is None:
        return _flush_done(state)
    if pending.same_content(state.last_written) and not _resend_due(state, now, policy):
        state = attrs.evolve(
            state,
            pending=None,
            attempt=0,
            answered_failures=0,
            unreachable_failures=0,
            skipped_unchanged=state.skipped_unchanged + 1,
        )
        return _flush_done(state)
    hold = _hold_for(state, pending, now, policy)
    if hold > _HOLD_EPSILON:
        state, timer = _start_timer(state)
        return attrs.evolve(state, holding=True), (Hold(timer, hold),)
    if now.sink_ready_in > 0:
        state, timer = _start_timer(state)
        return state, (WaitForSink(timer, now.sink_ready_in),)
    return attrs.evolve(state, pending=None, in_flight=pending, in_flight_since=now.monotonic), (Write(pending),)


def _hold_for(state: CoalescerState, pending: Status, now: Now, policy: CoalescingPolicy) -> float:
    """Seconds a timestamp-only change still waits (0 when it may go now); a flush never waits."""
    interval = policy.timestamp_only_after
    written_at = state.last_written_at
    if interval is None or written_at is None or state.flushing:
        return 0.0
    if not only_timestamps_differ(pending, state.last_written):
        return 0.0
    return min(max(written_at + interval - now.monotonic, 0.0), interval)  # never past the interval


def _resend_due(state: CoalescerState, now: Now, policy: CoalescingPolicy) -> bool:
    after = policy.resend_unchanged_after
    return after is not None and state.last_written_at is not None and now.monotonic - state.last_written_at >= after


def _flush_done(state: CoalescerState) -> _Step:
    if state.flushing and state.pending is None:
        return attrs.evolve(state, flushing=False), (FlushDone(),)
    return state, ()


def _start_timer(state: CoalescerState) -> tuple[CoalescerState, int]:
    timer = state.timers_started + 1
    return attrs.evolve(state, timer=timer, timers_started=timer), timer


def _succeeded(state: CoalescerState, now: Now, policy: CoalescingPolicy) -> _Step:
    written = state.in_flight
    if written is None:
        return state, ()  # no write was awaited: nothing to record
    state = attrs.evolve(
        state,
        in_flight=None,
        last_written=written,
        # When the write was decided, so a re-assert keeps the cadence of the reports
        # that trigger it rather than drifting by the sink's latency each time.
        last_written_at=state.in_flight_since,
        attempt=0,
        answered_failures=0,
        unreachable_failures=0,
        written=state.written + 1,
        last_error="",
    )
    return _advance(state, now, policy)


def _failed(state: CoalescerState, error: str, draw: float, unreachable: bool, policy: CoalescingPolicy) -> _Step:
    failed = state.in_flight
    if failed is None:
        return state, ()
    attempt = state.attempt + 1
    if unreachable:
        answered, unanswered = 0, state.unreachable_failures + 1
        delay = min(policy.backoff.delay(unanswered, draw), policy.unreachable_retry_max)
    else:
        answered, unanswered = state.answered_failures + 1, 0
        delay = policy.backoff.delay(answered, draw)
    # The failed status is retried unless a newer one arrived meanwhile (latest wins).
    retry = state.pending if state.pending is not None else failed
    state = attrs.evolve(
        state,
        pending=retry,
        in_flight=None,
        attempt=attempt,
        answered_failures=answered,
        unreachable_failures=unanswered,
        failed_attempts=state.failed_attempts + 1,
        coalesced=state.coalesced + int(retry is not failed),
        last_error=error,
    )
    state, timer = _start_timer(state)
    return state, (RetryLater(timer, delay, attempt, error, retry),)
