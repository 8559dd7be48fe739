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
* **One write at a time.**  Nothing is written while a write is in flight or a timer is
  outstanding; a stale timer (one that is no longer the outstanding one) changes nothing.
* **Wait for a throttled sink on a timer**, so whatever is newest when it is ready is
  what gets written, rather than blocking inside the sink holding an older status.
* **Retry failures** after a capped, jittered exponential backoff; a newer status
  replaces the one being retried and waits out the same backoff.
* **Flush** cuts a backoff short (one immediate attempt), then reports :class:`FlushDone`
  once nothing is pending.
"""

from __future__ import annotations

from typing import Final, assert_never

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.errors import ValidationError
from vmcp_actors.model.status import Status

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "CancelTimer",
    "CoalescerState",
    "CoalescingPolicy",
    "Effect",
    "Event",
    "FlushDone",
    "FlushRequested",
    "Now",
    "Offered",
    "ReporterStats",
    "RetryLater",
    "TimerFired",
    "WaitForSink",
    "Write",
    "WriteFailed",
    "WriteSucceeded",
    "step",
]

#: Sink retries: 100 ms doubling to 30 s, with up to 20 % added jitter.
DEFAULT_RETRY_BACKOFF: Final = Backoff(initial=0.1, maximum=30.0, factor=2.0, jitter=0.2)


def _non_negative_or_none(instance: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValidationError(attribute.name, f"must be >= 0 seconds or None, got {value!r}", value)


@attrs.frozen
class CoalescingPolicy:
    """The numbers: the retry backoff and the optional periodic re-assert."""

    backoff: Backoff = DEFAULT_RETRY_BACKOFF
    resend_unchanged_after: float | None = attrs.field(default=None, validator=_non_negative_or_none)


@attrs.frozen
class Now:
    """What the shell observed when the event is handled.

    ``monotonic`` is the scheduler's clock in seconds; ``sink_ready_in`` the seconds the
    sink asks to wait before the next write (its rate limit; 0 when it would go now).
    """

    monotonic: float
    sink_ready_in: float = 0.0


@attrs.frozen
class ReporterStats:
    """Counters for tests, benchmarks and metrics.

    At rest, ``received == written + skipped_unchanged + coalesced + (1 if pending else 0)``.
    """

    received: int = 0
    written: int = 0
    coalesced: int = 0
    skipped_unchanged: int = 0
    failed_attempts: int = 0
    pending: bool = False
    last_error: str = ""


# --------------------------------------------------------------------------- events


@attrs.frozen
class Offered:
    """A wake-up: ``status`` is what the one-slot mailbox held (``None`` when it was empty)."""

    status: Status | None


@attrs.frozen
class TimerFired:
    """Timer ``timer`` expired; ``status`` is what the mailbox held meanwhile."""

    timer: int
    status: Status | None


@attrs.frozen
class FlushRequested:
    """Write what is pending now (cutting a backoff short), then report :class:`FlushDone`."""

    status: Status | None


@attrs.frozen
class WriteSucceeded:
    """The sink took the status of the last :class:`Write`."""


@attrs.frozen
class WriteFailed:
    """The sink raised ``error`` on the last :class:`Write`; ``draw`` in ``[0, 1)`` sets the jitter."""

    error: str
    draw: float


Event = Offered | TimerFired | FlushRequested | WriteSucceeded | WriteFailed


# --------------------------------------------------------------------------- effects


@attrs.frozen
class Write:
    """Call the sink with ``status``, then feed its outcome back as the next event."""

    status: Status


@attrs.frozen
class RetryLater:
    """Attempt ``attempt`` failed with ``error``: start timer ``timer`` to fire in ``delay`` s."""

    timer: int
    delay: float
    attempt: int
    error: str
    status: Status


@attrs.frozen
class WaitForSink:
    """The sink is throttled: start timer ``timer`` to fire in ``delay`` s."""

    timer: int
    delay: float


@attrs.frozen
class CancelTimer:
    """Timer ``timer`` is no longer wanted (its firing would be ignored anyway)."""

    timer: int


@attrs.frozen
class FlushDone:
    """Nothing is pending any more: every flush requested so far is complete."""


Effect = Write | RetryLater | WaitForSink | CancelTimer | FlushDone


# --------------------------------------------------------------------------- state


@attrs.frozen
class CoalescerState:
    """Everything the reporter knows, plus the counters it publishes.

    ``pending`` is the newest status not yet handed to the sink; ``in_flight`` the one
    handed to it (at ``in_flight_since``) whose outcome is awaited (a failed one becomes
    pending again unless a newer one took its place); ``timer`` the outstanding timer's id (``None`` when no
    timer is wanted); ``attempt`` the consecutive failures so far.
    """

    pending: Status | None = None
    in_flight: Status | None = None
    in_flight_since: float = 0.0
    last_written: Status | None = None
    last_written_at: float | None = None
    attempt: int = 0
    timer: int | None = None
    timers_started: int = 0
    flushing: bool = False
    received: int = 0
    written: int = 0
    coalesced: int = 0
    skipped_unchanged: int = 0
    failed_attempts: int = 0
    last_error: str = ""

    def stats(self) -> ReporterStats:
        """The counters as published (``received`` counts statuses taken from the mailbox)."""
        return ReporterStats(
            received=self.received,
            written=self.written,
            coalesced=self.coalesced,
            skipped_unchanged=self.skipped_unchanged,
            failed_attempts=self.failed_attempts,
            pending=self.unwritten is not None,
            last_error=self.last_error,
        )

    @property
    def unwritten(self) -> Status | None:
        """The newest status the sink has not taken yet (pending, else in flight)."""
        return self.pending if self.pending is not None else self.in_flight

    def after_crash(self, *, requeued: bool) -> CoalescerState:
        """What a replacement actor starts from: the counters and the last write, nothing in progress.

        ``requeued`` says the pending status went back into the mailbox, where it will be
        taken (and counted as received) again; otherwise a newer one was already waiting
        there and the pending one counts as coalesced.
        """
        received, coalesced = self.received, self.coalesced
        if self.pending is not None and self.in_flight is not None:
            coalesced += 1  # the write's outcome is lost with the actor; the newer one is what matters
        if self.unwritten is not None:
            if requeued:
                received -= 1
            else:
                coalesced += 1
        return CoalescerState(
            last_written=self.last_written,
            last_written_at=self.last_written_at,
            timers_started=self.timers_started,
            received=received,
            written=self.written,
            coalesced=coalesced,
            skipped_unchanged=self.skipped_unchanged,
            failed_attempts=self.failed_attempts,
            last_error=self.last_error,
        )


# --------------------------------------------------------------------------- the rules

_Step = tuple[CoalescerState, tuple[Effect, ...]]


def step(state: CoalescerState, event: Event, now: Now, policy: CoalescingPolicy) -> _Step:
    """The next state and the effects to perform, in order."""
    match event:
        case Offered(status=status):
            return _advance(_take(state, status), now, policy)
        case TimerFired(timer=timer, status=status):
            state = _take(state, status)
            if state.timer == timer:
                state = attrs.evolve(state, timer=None)
            return _advance(state, now, policy)
        case FlushRequested(status=status):
            state = attrs.evolve(_take(state, status), flushing=True)
            cancel: tuple[Effect, ...] = ()
            if state.timer is not None:
                cancel = (CancelTimer(state.timer),)
                state = attrs.evolve(state, timer=None)
            state, effects = _advance(state, now, policy)
            return state, cancel + effects
        case WriteSucceeded():
            return _succeeded(state, now, policy)
        case WriteFailed(error=error, draw=draw):
            return _failed(state, error, draw, policy)
        case _:
            assert_never(event)


def _take(state: CoalescerState, status: Status | None) -> CoalescerState:
    """Make ``status`` the pending one; the one it replaces counts as coalesced."""
    if status is None:
        return state
    replaced = state.pending is not None
    return attrs.evolve(state, pending=status, received=state.received + 1, coalesced=state.coalesced + int(replaced))


def _advance(state: CoalescerState, now: Now, policy: CoalescingPolicy) -> _Step:
    """Write the pending status if nothing stands in the way; else skip, wait, or finish a flush."""
    if state.in_flight is not None or state.timer is not None:
        return state, ()
    pending = state.pending
    if pending is None:
        return _flush_done(state)
    if pending.same_content(state.last_written) and not _resend_due(state, now, policy):
        state = attrs.evolve(state, pending=None, attempt=0, skipped_unchanged=state.skipped_unchanged + 1)
        return _flush_done(state)
    if now.sink_ready_in > 0:
        state, timer = _start_timer(state)
        return state, (WaitForSink(timer, now.sink_ready_in),)
    return attrs.evolve(state, pending=None, in_flight=pending, in_flight_since=now.monotonic), (Write(pending),)


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
        written=state.written + 1,
        last_error="",
    )
    return _advance(state, now, policy)


def _failed(state: CoalescerState, error: str, draw: float, policy: CoalescingPolicy) -> _Step:
    failed = state.in_flight
    if failed is None:
        return state, ()
    attempt = state.attempt + 1
    # The failed status is retried unless a newer one arrived meanwhile (latest wins).
    retry = state.pending if state.pending is not None else failed
    state = attrs.evolve(
        state,
        pending=retry,
        in_flight=None,
        attempt=attempt,
        failed_attempts=state.failed_attempts + 1,
        coalesced=state.coalesced + int(retry is not failed),
        last_error=error,
    )
    state, timer = _start_timer(state)
    return state, (RetryLater(timer, policy.backoff.delay(attempt, draw), attempt, error, retry),)
