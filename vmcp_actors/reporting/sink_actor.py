"""The reporter's actor: the one thread that calls the sink, so writes never overlap.

:class:`~vmcp_actors.reporting.actor_reporter.ActorReporter` is the thread-safe facade;
this is what it starts behind it.  The actor turns each message into an event for the
pure rules (:func:`vmcp_actors.reporting.coalescing.step`), performs the effects they
return -- call the sink, start or cancel one timer, resolve flush waiters -- and feeds
each write's outcome back, so every decision stays in the rules and every effect here.
It owns no status: the slot it takes from and the state it publishes belong to the
facade, which is how a replacement actor carries on after a crash.

The actor class keeps its leading underscore (it is the reporting package's business
only) and so its thread names, ``_ReporterActor-N``, which leak checks look for.
"""

from __future__ import annotations

import collections
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, assert_never

import attrs

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, Timer
from vmcp_actors.errors import KubernetesTransientError, ShutdownTimeoutError
from vmcp_actors.model.status import Status
from vmcp_actors.reporting import coalescing as rules
from vmcp_actors.reporting.coalescing import CoalescerState, CoalescingPolicy
from vmcp_actors.reporting.mailslot import LatestSlot
from vmcp_actors.reporting.protocol import Reporter, ready_in

__all__ = ["Barrier", "Flush", "ReporterEvent", "ReporterObserver", "Rewrite", "TimerDue", "Wake"]

log = logging.getLogger(__name__)


@attrs.frozen
class ReporterEvent:
    """What became of statuses the reporter took, as an observer (metrics) is told.

    ``outcome`` is ``written``, ``failed`` (both with ``seconds``, the sink call's real
    duration), ``skipped_unchanged``, ``coalesced`` (``count`` statuses replaced by a
    newer one before they were written) or ``throttled`` (the sink's rate limit deferred
    a write).  Told on the reporter's actor thread: an observer must only hand the event
    on, never block.
    """

    outcome: str
    count: int = 1
    seconds: float | None = None


ReporterObserver = Callable[[ReporterEvent], None]


# --------------------------------------------------------------------------- messages


@attrs.frozen
class Wake:
    """The slot may hold a new status."""


@attrs.frozen
class Rewrite:
    """Write ``status`` (or anything newer in the slot) even if it equals what was written."""

    status: Status


@attrs.frozen
class Barrier:
    """Answered once everything queued before it has been handled."""


@attrs.frozen
class TimerDue:
    """Timer ``timer`` expired."""

    timer: int


@attrs.frozen
class Flush:
    """Write what is pending, then resolve ``done``."""

    done: Future[None]


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` means no answer came at all (a Kubernetes error without an HTTP status)."""
    return isinstance(error, KubernetesTransientError) and error.status is None


# --------------------------------------------------------------------------- the actor


class _ReporterActor(GuardedActor):
    """The only thread that touches the sink: feeds events to ``step``, performs its effects.

    Its thread is a daemon (see GuardedActor): a sink call that never returns must not
    keep the host process from exiting.  Clean shutdown still stops and joins it.
    """

    def __init__(
        self,
        sink: Reporter,
        slot: LatestSlot,
        scheduler: Scheduler,
        policy: CoalescingPolicy,
        rng: random.Random,
        state: CoalescerState,
        publish: Callable[[CoalescerState], None],
        on_crash: CrashHandler,
        observe: Callable[[ReporterEvent], None] | None = None,
    ) -> None:
        super().__init__("status reporter", on_crash)
        self._observe = observe
        self._sink = sink
        self._slot = slot
        self._scheduler = scheduler
        self._policy = policy
        self._rng = rng
        self._state = state
        self._publish = publish
        self._timer: Timer | None = None
        self._flush_waiters: list[Future[None]] = []

    def handle(self, message: Any) -> None:
        """Turn ``message`` into an event for the rules; publish the state whatever happens."""
        try:
            match message:
                case Wake():
                    self._feed(rules.Offered(self._slot.take()))
                case TimerDue(timer=timer):
                    self._feed(rules.TimerFired(timer, self._slot.take()))
                case Flush(done=done):
                    self._flush_waiters.append(done)
                    self._feed(rules.FlushRequested(self._slot.take()))
                case Rewrite(status=status):
                    self._feed(rules.Rewrite(self._slot.take() or status))
                case Barrier():
                    return
                case _:
                    log.warning("status reporter actor ignored unexpected message %r", message)
        finally:
            self._publish(self._state)

    def cancel_timer(self) -> None:
        """Stop the outstanding timer, if any (the actor is being replaced or stopped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_stop(self) -> None:
        """Leave no timer behind and no flush waiter hanging."""
        self.cancel_timer()
        for waiter in self._flush_waiters:
            if not waiter.done():
                waiter.set_exception(ShutdownTimeoutError("reporter stopped before the flush completed"))

    def _feed(self, event: rules.Event) -> None:
        """Step the rules with ``event`` and with each write outcome they lead to."""
        events: collections.deque[rules.Event] = collections.deque([event])
        while events:
            self._state, effects = rules.step(self._state, events.popleft(), self._now(), self._policy)
            for effect in effects:
                outcome = self._perform(effect)
                if outcome is not None:
                    events.append(outcome)

    def _perform(self, effect: rules.Effect) -> rules.Event | None:
        match effect:
            case rules.Write(status=status):
                started = time.perf_counter()
                try:
                    self._sink.report_status(status)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - every sink failure (SystemExit too) is retried, never fatal
                    self._tell("failed", seconds=time.perf_counter() - started)
                    return rules.WriteFailed(f"{type(exc).__name__}: {exc}", self._rng.random(), _unreachable(exc))
                self._tell("written", seconds=time.perf_counter() - started)
                return rules.WriteSucceeded()
            case rules.RetryLater(timer=timer, delay=delay):
                log.warning(
                    "status sink %s failed (attempt %d, phase %s): %s; retrying in %.2f s",
                    type(self._sink).__name__,
                    effect.attempt,
                    effect.status.phase.value,
                    effect.error,
                    delay,
                )
                self._start_timer(timer, delay)
            case rules.WaitForSink(timer=timer, delay=delay) | rules.Hold(timer=timer, delay=delay):
                if isinstance(effect, rules.WaitForSink):
                    self._tell("throttled")
                self._start_timer(timer, delay)
            case rules.CancelTimer():
                self.cancel_timer()
            case rules.FlushDone():
                waiters, self._flush_waiters = self._flush_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            case _:
                assert_never(effect)
        return None

    def _tell(self, outcome: str, seconds: float | None = None) -> None:
        if self._observe is not None:
            self._observe(ReporterEvent(outcome, seconds=seconds))

    def _start_timer(self, timer: int, delay: float) -> None:
        self.cancel_timer()
        actor_ref = self.actor_ref
        self._timer = self._scheduler.call_later(delay, lambda: tell_quietly(actor_ref, TimerDue(timer)))

    def _now(self) -> rules.Now:
        return rules.Now(self._scheduler.clock.monotonic(), ready_in(self._sink))
