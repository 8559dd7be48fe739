r"""``ActorReporter``: any sink made non-blocking, serialised, coalesced, retried and flushed.

What toolhive's ``Reporter`` interface only documents, this does:

* **Coalesce at the sender** (:mod:`~vmcp_actors.reporting.mailslot`): a burst of a
  hundred thousand updates costs as many slot writes and a handful of pykka ``tell``\ s,
  not a hundred thousand envelopes in an inbox.
* **Serialise.**  Only the actor thread (:mod:`~vmcp_actors.reporting.sink_actor`) calls
  the sink: one write at a time, in order.
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

import logging
import random
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, Final

import attrs
import pykka

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.guard import GuardedActor
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler
from vmcp_actors.errors import ReporterClosedError, ReporterNotStartedError, ShutdownTimeoutError
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.coalescing import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_UNREACHABLE_RETRY_MAX,
    CoalescerState,
    CoalescingPolicy,
    ReporterStats,
)
from vmcp_actors.reporting.mailslot import LatestSlot
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter, Shutdown
from vmcp_actors.reporting.sink_actor import (
    Barrier,
    Flush,
    ReporterEvent,
    ReporterObserver,
    Rewrite,
    Wake,
    _ReporterActor,
)

__all__ = ["DEFAULT_FLUSH_TIMEOUT", "ActorReporter"]

log = logging.getLogger(__name__)

#: What ``shutdown(None)`` waits for a flush before giving up and saying what was lost.
DEFAULT_FLUSH_TIMEOUT: Final = 30.0


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
    :param observer: told a :class:`~vmcp_actors.reporting.sink_actor.ReporterEvent` for
        every outcome (metrics); it may also be set later through the ``observer`` attribute.
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
                actor_ref.tell(Wake())
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
                actor_ref.tell(Rewrite(status))
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
        actor_ref.ask(Barrier(), timeout=timeout)

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
        self._actor_ref.tell(Wake())

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
            actor_ref.tell(Flush(done))
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
