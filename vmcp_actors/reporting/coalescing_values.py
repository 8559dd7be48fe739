"""The values the coalescing rules work on: their policy, events, effects and state, all frozen.

Kept apart from the rules (:mod:`vmcp_actors.reporting.coalescing`, which re-exports every
name here) so each module has one job: this one says what can happen and what the
reporter knows, that one decides.
"""

from __future__ import annotations

from typing import Final

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.errors import ValidationError
from vmcp_actors.model.status import Status

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
]

#: Sink retries: 100 ms doubling to 30 s, with up to 20 % added jitter.
DEFAULT_RETRY_BACKOFF: Final = Backoff(initial=0.1, maximum=30.0, factor=2.0, jitter=0.2)
#: The longest wait before retrying a sink that did not answer at all.
DEFAULT_UNREACHABLE_RETRY_MAX: Final = 1.0


def _non_negative_or_none(instance: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValidationError(attribute.name, f"must be >= 0 seconds or None, got {value!r}", value)


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValidationError(attribute.name, f"must be > 0 seconds, got {value!r}", value)


@attrs.frozen
class CoalescingPolicy:
    """The numbers: the retry backoff, the periodic re-assert, the timestamp-only hold, the unreachable cap."""

    backoff: Backoff = DEFAULT_RETRY_BACKOFF
    resend_unchanged_after: float | None = attrs.field(default=None, validator=_non_negative_or_none)
    timestamp_only_after: float | None = attrs.field(default=None, validator=_non_negative_or_none)
    unreachable_retry_max: float = attrs.field(default=DEFAULT_UNREACHABLE_RETRY_MAX, validator=_positive)


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
    ``held``: what is pending only refreshes timestamps and waits out the status interval
    on purpose, so the sink is not behind (metrics do not count it as pending).
    """

    received: int = 0
    written: int = 0
    coalesced: int = 0
    skipped_unchanged: int = 0
    failed_attempts: int = 0
    pending: bool = False
    last_error: str = ""
    held: bool = False


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
    """The sink raised ``error`` on the last :class:`Write`; ``draw`` in ``[0, 1)`` sets the jitter.

    ``unreachable``: no answer came at all (refused, reset, timed out), as opposed to an
    answer that refused the write.
    """

    error: str
    draw: float
    unreachable: bool = False


@attrs.frozen
class Rewrite:
    """A new writer took over (this replica became the leader): write ``status`` at once.

    What was written before may be gone or overwritten, so it is forgotten; anything newer
    in the slot wins over ``status``.
    """

    status: Status | None


Event = Offered | TimerFired | FlushRequested | WriteSucceeded | WriteFailed | Rewrite


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
class Hold:
    """Only timestamps changed: start timer ``timer`` to fire in ``delay`` s, when the interval is over."""

    timer: int
    delay: float


@attrs.frozen
class CancelTimer:
    """Timer ``timer`` is no longer wanted (its firing would be ignored anyway)."""

    timer: int


@attrs.frozen
class FlushDone:
    """Nothing is pending any more: every flush requested so far is complete."""


Effect = Write | RetryLater | WaitForSink | Hold | CancelTimer | FlushDone


# --------------------------------------------------------------------------- state


@attrs.frozen
class CoalescerState:
    """Everything the reporter knows, plus the counters it publishes.

    ``pending`` is the newest status not yet handed to the sink; ``in_flight`` the one
    handed to it (at ``in_flight_since``) whose outcome is awaited (a failed one becomes
    pending again unless a newer one took its place); ``timer`` the outstanding timer's id (``None`` when no
    timer is wanted), ``holding`` whether it is a timestamp-only hold (which a real change
    cuts short); ``attempt`` the consecutive failures so far, ``answered_failures`` and
    ``unreachable_failures`` the current run of each kind (each backoff counts its own).
    """

    pending: Status | None = None
    in_flight: Status | None = None
    in_flight_since: float = 0.0
    last_written: Status | None = None
    last_written_at: float | None = None
    attempt: int = 0
    answered_failures: int = 0
    unreachable_failures: int = 0
    timer: int | None = None
    holding: bool = False
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
            held=self.holding and self.pending is not None and self.in_flight is None,
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
