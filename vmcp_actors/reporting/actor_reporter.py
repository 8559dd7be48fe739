r"""``ActorReporter``: any sink made non-blocking, serialised, coalesced, retried and flushed.

What toolhive's ``Reporter`` interface only documents, this does:

* **Coalesce at the sender** (:mod:`~vmcp_actors.reporting.mailslot`): a burst of a
  hundred thousand updates costs as many slot writes and a handful of pykka ``tell``\ s,
  not a hundred thousand envelopes in an inbox.
* **Serialise.**  Only the actor thread calls the sink: one write at a time, in order.
* **Decide purely.**  Whether to skip an unchanged status, wait for a throttled sink,
  write, or retry after a capped jittered backoff is decided by
  :func:`vmcp_actors.reporting.coalescing.step`; the actor only feeds it what happened
  and performs what it returns (call the sink, start or cancel a timer -- never a sleep,
  never a busy loop -- and resolve flushes).
* **Flush on shutdown** through retries, within a timeout, and say what was not flushed
  if the timeout wins.

The pending status lives in the slot and in the state the actor publishes, both owned by
the ``ActorReporter`` rather than the actor, so if the actor thread ever dies the next
one starts from where it stopped and nothing the reporter held is lost.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, Final, assert_never

import attrs
import pykka

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler, Timer
from vmcp_actors.errors import (
    KubernetesTransientError,
    ReporterClosedError,
    ReporterNotStartedError,
    ShutdownTimeoutError,
)
from vmcp_actors.model.status import Status
from vmcp_actors.reporting import coalescing as rules
from vmcp_actors.reporting.coalescing import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_UNREACHABLE_RETRY_MAX,
    CoalescerState,
    CoalescingPolicy,
    ReporterStats,
)
from vmcp_actors.reporting.mailslot import LatestSlot
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter, Shutdown, ready_in

__all__ = ["DEFAULT_FLUSH_TIMEOUT", "ActorReporter", "ReporterEvent", "ReporterObserver"]

log = logging.getLogger(__name__)

#: What ``shutdown(None)`` waits for a flush before giving up and saying what was lost.
DEFAULT_FLUSH_TIMEOUT: Final = 30.0


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
class _Wake:
    """The slot may hold a new status."""


@attrs.frozen
class _Rewrite:
    """Write ``status`` (or anything newer in the slot) even if it equals what was written."""

    status: Status


@attrs.frozen
class _Barrier:
    """Answered once everything queued before it has been handled."""


@attrs.frozen
class _TimerDue:
    """Timer ``timer`` expired."""

    timer: int


@attrs.frozen
class _Flush:
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
                case _Wake():
                    self._feed(rules.Offered(self._slot.take()))
                case _TimerDue(timer=timer):
                    self._feed(rules.TimerFired(timer, self._slot.take()))
                case _Flush(done=done):
                    self._flush_waiters.append(done)
                    self._feed(rules.FlushRequested(self._slot.take()))
                case _Rewrite(status=status):
                    self._feed(rules.Rewrite(self._slot.take() or status))
                case _Barrier():
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
        self._timer = self._scheduler.call_later(delay, lambda: tell_quietly(actor_ref, _TimerDue(timer)))

    def _now(self) -> rules.Now:
        return rules.Now(self._scheduler.clock.monotonic(), ready_in(self._sink))


# --------------------------------------------------------------------------- the facade


class ActorReporter:
    """Wraps any :class:`~vmcp_actors.reporting.protocol.Reporter` with a pykka actor.

    ``report_status`` never blocks on I/O and is safe from any thread.  The sink is
    called from the actor thread only.  See the module docstring for the guarantees.

    :param sink: where statuses go (``K8sReporter``, ``FileReporter``, ...).
    :param scheduler: delivers retry timers; by default one is started with the
        reporter and stopped with it.  Tests pass a ``ManualScheduler``.
    :param backoff: retry delays for sink failures.
    :param resend_unchanged_after: if set, a status equal to the last one written is
        written again once this many seconds have passed since that write, so a
        periodic re-assert can repair a status that someone else overwrote.
    :param timestamp_only_after: if set, a status that differs from the last one written
        only in its timestamps (``lastHealthCheck``, build time) waits until this many
        seconds have passed since that write; a real change still goes out at once.
    :param unreachable_retry_max: the longest wait before retrying a sink that gave no
        answer at all, so the status lands soon after the destination is back.
    :param flush_timeout: what ``shutdown(None)`` waits for the final flush.
    :param observer: told a :class:`ReporterEvent` for every outcome (metrics); it may
        also be set later through the ``observer`` attribute.
    """

    def __init__(
        self,
        sink: Reporter,
        *,
        scheduler: Scheduler | None = None,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        resend_unchanged_after: float | None = None,
        timestamp_only_after: float | None = None,
        unreachable_retry_max: float = DEFAULT_UNREACHABLE_RETRY_MAX,
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
        observer: ReporterObserver | None = None,
    ) -> None:
        self.observer = observer
        self._sink = sink
        self._policy = CoalescingPolicy(backoff, resend_unchanged_after, timestamp_only_after, unreachable_retry_max)
        self._scheduler = scheduler
        self._owned_scheduler: ThreadScheduler | None = None  # started with the reporter when none is given
        self._rng = rng or random.Random()
        self._flush_timeout = flush_timeout
        self._slot = LatestSlot()
        self._received = 0
        self._lock = threading.Lock()  # sender side only: closed flag vs. slot writes
        self._closed = False
        self._actor_ref: pykka.ActorRef[Any] | None = None
        # Replaced (never mutated) by the actor after each message: a single reference
        # assignment, so readers on other threads see one consistent snapshot.
        self._state = CoalescerState()
        # The counters the observer has been told about (the actor's thread only).
        self._told_coalesced = 0
        self._told_skipped = 0
        self._sink_shutdown: Shutdown | None = None
        self._shutdown: OnceShutdown | None = None
        self._restarts = 0

    def start(self) -> Shutdown:
        """Start the sink and the actor; calling it again returns the same shutdown."""
        with self._lock:
            if self._shutdown is not None:
                return self._shutdown
            self._sink_shutdown = self._sink.start()
            self._spawn_actor()
            self._shutdown = OnceShutdown(self._do_shutdown)
            return self._shutdown

    def report_status(self, status: Status | None) -> None:
        """Hand ``status`` to the actor; returns at once, whatever the sink is doing."""
        if status is None:
            return
        with self._lock:
            if self._closed:
                raise ReporterClosedError(
                    f"status (phase {status.phase.value}) reported after the reporter was shut down"
                )
            actor_ref = self._actor_ref
            if actor_ref is None:
                raise ReporterNotStartedError("ActorReporter.report_status called before start()")
            self._received += 1
            if not self._slot.put(status):
                return
            try:
                actor_ref.tell(_Wake())
            except pykka.ActorDeadError:
                self._respawn_locked("actor found dead on report")

    def rewrite(self, status: Status) -> None:
        """Write ``status`` again even if it equals the last write: a new writer took over.

        Leader election: a follower's sink withholds its writes, so what the reporter
        remembers as written never reached the object; when this replica starts leading,
        the runtime calls this with its latest status.  Returns at once.
        """
        with self._lock:
            if self._closed:
                raise ReporterClosedError(
                    f"status (phase {status.phase.value}) rewritten after the reporter was shut down"
                )
            actor_ref = self._actor_ref
            if actor_ref is None:
                raise ReporterNotStartedError("ActorReporter.rewrite called before start()")
            self._received += 1
            try:
                actor_ref.tell(_Rewrite(status))
            except pykka.ActorDeadError:
                self._respawn_locked("actor found dead on rewrite")

    def stats(self) -> ReporterStats:
        """A consistent snapshot of the counters (``received`` counts the sender side)."""
        snapshot = self._state.stats()
        received = self._received
        in_slot = len(self._slot)
        return attrs.evolve(
            snapshot,
            received=received,
            coalesced=received - snapshot.received - in_slot + snapshot.coalesced,
            pending=snapshot.pending or in_slot > 0,
            held=snapshot.held and in_slot == 0,
        )

    @property
    def sink(self) -> Reporter:
        """The wrapped sink (what metrics label the writes with)."""
        return self._sink

    @property
    def restarts(self) -> int:
        """How many times the actor was found dead and replaced."""
        return self._restarts

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until the actor has handled everything sent to it before this call."""
        actor_ref = self._actor_ref
        if actor_ref is None:
            raise ReporterNotStartedError("ActorReporter.wait_idle called before start()")
        actor_ref.ask(_Barrier(), timeout=timeout)

    def _publish_state(self, state: CoalescerState) -> None:
        self._state = state
        self._tell_counts(state)

    def _tell_counts(self, state: CoalescerState) -> None:
        """Tell the observer what was coalesced or skipped since it was last told."""
        coalesced = state.coalesced - self._told_coalesced + self._slot.replaced_since_asked()
        skipped = state.skipped_unchanged - self._told_skipped
        self._told_coalesced, self._told_skipped = state.coalesced, state.skipped_unchanged
        if coalesced > 0:
            self._observe(ReporterEvent("coalesced", coalesced))
        if skipped > 0:
            self._observe(ReporterEvent("skipped_unchanged", skipped))

    def _observe(self, event: ReporterEvent) -> None:
        observer = self.observer
        if observer is None:
            return
        try:
            observer(event)
        except Exception:
            log.exception("status reporter observer failed on %s", event.outcome)

    def _timers(self) -> Scheduler:
        if self._scheduler is not None:
            return self._scheduler
        if self._owned_scheduler is None:
            self._owned_scheduler = ThreadScheduler(name="vmcp-reporter-timers")
        return self._owned_scheduler

    def _spawn_actor(self) -> None:
        self._slot.expect_wake()
        self._actor_ref = _ReporterActor.start(
            self._sink,
            self._slot,
            self._timers(),
            self._policy,
            self._rng,
            self._state,
            self._publish_state,
            self._actor_crashed,
            self._observe,
        )
        # Whatever sits in the slot (from before a crash) is picked up by the new actor.
        self._actor_ref.tell(_Wake())

    def _respawn_locked(self, why: str) -> None:
        self._restarts += 1
        log.error("status reporter actor restarted (%s); the pending status is kept", why)
        self._spawn_actor()

    def _actor_crashed(self, actor: GuardedActor, error: BaseException) -> None:
        """Called on the dying actor's thread (pykka ``on_failure``): start a new one.

        The dead actor's unwritten status goes back into the slot unless a newer one
        already waits there, so the crash loses nothing.
        """
        assert isinstance(actor, _ReporterActor)
        actor.cancel_timer()
        with self._lock:
            if self._actor_ref is not actor.actor_ref:
                return
            state = self._state
            unwritten = state.unwritten
            self._publish_state(state.after_crash(requeued=unwritten is not None and self._slot.requeue(unwritten)))
            if self._closed:
                return
            self._respawn_locked(f"unexpected failure: {error!r}")

    def _do_shutdown(self, timeout: float | None) -> None:
        # Real seconds, whatever clock the retries run on: this bounds how long the
        # caller is kept waiting.
        budget = self._flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        with self._lock:
            self._closed = True
            actor_ref = self._actor_ref
        error: ShutdownTimeoutError | None = None
        try:
            if actor_ref is not None:
                error = self._flush_and_stop(actor_ref, deadline)
        finally:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                if self._sink_shutdown is not None:
                    self._sink_shutdown(remaining)
            finally:
                if self._owned_scheduler is not None:
                    self._owned_scheduler.stop()
        if error is not None:
            raise error

    def _flush_and_stop(self, actor_ref: pykka.ActorRef[Any], deadline: float) -> ShutdownTimeoutError | None:
        budget = max(deadline - time.monotonic(), 0.0)
        done: Future[None] = Future()
        error: ShutdownTimeoutError | None = None
        try:
            actor_ref.tell(_Flush(done))
            done.result(timeout=budget)
        except (FutureTimeoutError, ShutdownTimeoutError, pykka.ActorDeadError):
            error = self._not_flushed(budget)
        try:
            # A little grace beyond the deadline lets a healthy actor finish its stop;
            # an actor stuck inside a sink call is a daemon and is left behind, logged.
            actor_ref.stop(block=True, timeout=max(deadline - time.monotonic(), 0.0) + 0.5)
        except pykka.Timeout:
            log.error("status reporter actor did not stop in time: its sink call is stuck")
        return error

    def _not_flushed(self, budget: float) -> ShutdownTimeoutError | None:
        """The error naming what the flush left unwritten, if anything."""
        pending = self._state.unwritten or self._slot.peek()
        if pending is None:
            return None
        stats = self.stats()
        return ShutdownTimeoutError(
            f"status not flushed within {budget:g} s: phase={pending.phase.value} "
            f"message={pending.message!r} after {stats.failed_attempts} failed attempt(s)"
            + (f"; last error: {stats.last_error}" if stats.last_error else ""),
            pending=pending,
        )
