"""``ActorReporter``: any sink made non-blocking, serialised, coalesced, retried and flushed.

What toolhive's ``Reporter`` interface only documents, this does:

* **Coalesce at the sender.**  ``report_status`` drops the status into a one-slot
  mailbox (latest wins) and wakes the actor only when no wake-up is already on its way.
  A burst of a hundred thousand updates costs a hundred thousand slot writes and a
  handful of pykka ``tell``\\ s, not a hundred thousand envelopes in an inbox.
* **Serialise.**  Only the actor thread calls the sink, so writes happen one at a time
  and in order; since the slot holds only the newest status, nothing older is ever
  written after something newer.
* **Skip what changes nothing.**  A status equal to the last one written (ignoring its
  timestamp) is not written again.
* **Retry** sink failures with capped exponential backoff and jitter, scheduled through
  a timer message (never a sleep in the actor, never a busy loop); a newer status
  replaces the one being retried.
* **Flush on shutdown** through retries, within a timeout, and say what was not flushed
  if the timeout wins.

The pending status lives in the slot, which belongs to the ``ActorReporter`` rather
than to the actor, so if the actor thread ever dies the next report starts a new one
and nothing the reporter held is lost.
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
from typing import Any, Final

import attrs
import pykka

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.guard import CrashForTest, GuardedActor, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler, Timer
from vmcp_actors.errors import ReporterClosedError, ReporterNotStartedError, ShutdownTimeoutError
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.base import OnceShutdown, Reporter, Shutdown

__all__ = ["DEFAULT_RETRY_BACKOFF", "ActorReporter", "ReporterEvent", "ReporterObserver", "ReporterStats"]

log = logging.getLogger(__name__)

#: Sink retries: 100 ms doubling to 30 s, with up to 20 % added jitter.
DEFAULT_RETRY_BACKOFF: Final = Backoff(initial=0.1, maximum=30.0, factor=2.0, jitter=0.2)
#: What ``shutdown(None)`` waits for a flush before giving up and saying what was lost.
DEFAULT_FLUSH_TIMEOUT: Final = 30.0


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


@attrs.frozen
class ReporterEvent:
    """What became of statuses the reporter took, as an observer (metrics) is told.

    ``outcome`` is ``written``, ``failed`` (both with ``seconds``, the sink call's real
    duration), ``skipped_unchanged``, ``coalesced`` (``count`` statuses replaced by a
    newer one before they were written) or ``throttled`` (the sink's rate limit deferred
    a write).  Emitted on the reporter's actor thread: an observer must only hand the
    event on, never block.
    """

    outcome: str
    count: int = 1
    seconds: float | None = None


ReporterObserver = Callable[[ReporterEvent], None]


# --------------------------------------------------------------------------- messages


class _Wake:
    """The slot may hold a new status."""


_WAKE: Final = _Wake()


class _Barrier:
    """Answered once everything queued before it has been handled."""


_BARRIER: Final = _Barrier()


@attrs.frozen
class _RetryDue:
    """The backoff for the failed write has expired."""

    timer_id: int


@attrs.frozen
class _Flush:
    """Write what is pending, then resolve ``done``."""

    done: Future[None]


# --------------------------------------------------------------------------- the actor


class _ReporterActor(GuardedActor):
    """The only thread that touches the sink; all its state is private to it.

    Its thread is a daemon (see GuardedActor): a sink call that never returns must not
    keep the host process from exiting.  Clean shutdown still stops and joins it.
    """

    def __init__(self, owner: ActorReporter) -> None:
        super().__init__("status reporter", owner._actor_crashed)
        self._owner = owner
        self._sink = owner._sink
        self._scheduler = owner._active_scheduler()
        self._backoff = owner._backoff
        self._rng = owner._rng
        self._resend_after = owner._resend_unchanged_after
        self._last_written: Status | None = None
        self._last_written_at = 0.0
        self._pending: Status | None = None
        self._attempt = 0
        self._retry_timer: Timer | None = None
        self._timer_ids = 0
        self._flush_waiters: list[Future[None]] = []
        # A replacement actor carries on the counters and the last write of the one it
        # replaces, so a restart neither resets metrics nor rewrites an unchanged status.
        inherited = owner._actor_stats
        self._taken = inherited.received
        self._replaced = inherited.coalesced
        self._written = inherited.written
        self._skipped = inherited.skipped_unchanged
        self._failed = inherited.failed_attempts
        self._last_error = inherited.last_error
        self._last_written = owner._last_written_view

    def _emit(self, outcome: str, count: int = 1, seconds: float | None = None) -> None:
        observer = self._owner.observer
        if observer is None:
            return
        try:
            observer(ReporterEvent(outcome, count, seconds))
        except Exception:
            log.exception("status reporter observer failed on %s", outcome)

    def handle(self, message: Any) -> None:
        try:
            self._handle(message)
        finally:
            self._publish_stats()

    @property
    def pending(self) -> Status | None:
        return self._pending

    def cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()

    def on_stop(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        for waiter in self._flush_waiters:
            if not waiter.done():
                waiter.set_exception(ShutdownTimeoutError("reporter stopped before the flush completed"))

    def _handle(self, message: object) -> None:
        if message is _WAKE:
            self._take_from_slot()
            self._write_pending()
        elif isinstance(message, _RetryDue):
            if self._retry_timer is not None and message.timer_id == self._timer_ids:
                self._retry_timer = None
                self._take_from_slot()
                self._write_pending()
        elif message is _BARRIER:
            return
        elif isinstance(message, _Flush):
            self._flush_waiters.append(message.done)
            self._take_from_slot()
            if self._retry_timer is not None:
                # Shutting down is the moment to try once more rather than wait out a
                # long backoff; later retries follow the backoff again.
                self._retry_timer.cancel()
                self._retry_timer = None
            self._write_pending()
        else:
            log.warning("status reporter actor ignored unexpected message %r", message)

    def _take_from_slot(self) -> None:
        # Re-arm the wake-up *before* emptying the slot: a status put in after this line
        # sends a fresh wake, so none is ever stranded in the slot.
        self._owner._wake_armed = True
        try:
            status = self._owner._slot.popleft()
        except IndexError:
            return
        self._taken += 1
        overwritten = self._owner.overwritten_since_asked()
        if overwritten > 0:
            self._emit("coalesced", overwritten)
        if self._pending is not None:
            self._replaced += 1
            self._emit("coalesced")
        self._pending = status

    def _write_pending(self) -> None:
        if self._retry_timer is not None:
            return  # backing off; the timer brings us back
        status = self._pending
        if status is None:
            self._resolve_flushes()
            return
        now = self._scheduler.clock.monotonic()
        if status.same_content(self._last_written) and not (
            self._resend_after is not None and now - self._last_written_at >= self._resend_after
        ):
            self._skipped += 1
            self._pending = None
            self._attempt = 0
            self._emit("skipped_unchanged")
            self._resolve_flushes()
            return
        wait = self._sink_ready_in()
        if wait > 0:
            # A throttled sink (K8sReporter's rate limiter): wait on a timer, not inside
            # the sink, so whatever is newest when the token arrives is what is written.
            self._emit("throttled")
            self._schedule_retry(wait)
            return
        started = time.perf_counter()
        try:
            self._sink.report_status(status)
        except Exception as exc:  # noqa: BLE001 - every sink failure is retried, never fatal
            self._emit("failed", seconds=time.perf_counter() - started)
            self._on_write_failed(status, exc)
            return
        self._emit("written", seconds=time.perf_counter() - started)
        self._written += 1
        self._last_written = status
        self._last_written_at = now
        self._attempt = 0
        self._last_error = ""
        if self._pending is status:
            self._pending = None
        self._resolve_flushes()

    def _on_write_failed(self, status: Status, exc: Exception) -> None:
        self._failed += 1
        self._attempt += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        delay = self._backoff.delay(self._attempt, self._rng.random())
        log.warning(
            "status sink %s failed (attempt %d, phase %s): %s; retrying in %.2f s",
            type(self._sink).__name__,
            self._attempt,
            status.phase.value,
            self._last_error,
            delay,
        )
        self._schedule_retry(delay)

    def _schedule_retry(self, delay: float) -> None:
        self._timer_ids += 1
        timer_id = self._timer_ids
        actor_ref = self.actor_ref
        self._retry_timer = self._scheduler.call_later(delay, lambda: tell_quietly(actor_ref, _RetryDue(timer_id)))

    def _sink_ready_in(self) -> float:
        ready_in = getattr(self._sink, "ready_in", None)
        if not callable(ready_in):
            return 0.0
        try:
            return max(float(ready_in()), 0.0)
        except Exception:
            log.exception("status sink %s: ready_in() failed; writing anyway", type(self._sink).__name__)
            return 0.0

    def _resolve_flushes(self) -> None:
        if self._pending is None and self._flush_waiters:
            waiters, self._flush_waiters = self._flush_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _publish_stats(self) -> None:
        # A single reference assignment: readers on other threads see either the old
        # snapshot or the new one, never a half-updated set of counters.
        self._owner._actor_stats = ReporterStats(
            received=self._taken,
            written=self._written,
            coalesced=self._replaced,
            skipped_unchanged=self._skipped,
            failed_attempts=self._failed,
            pending=self._pending is not None,
            last_error=self._last_error,
        )
        self._owner._pending_view = self._pending
        self._owner._last_written_view = self._last_written


# --------------------------------------------------------------------------- the facade


class ActorReporter:
    """Wraps any :class:`~vmcp_actors.reporting.base.Reporter` with a pykka actor.

    ``report_status`` never blocks on I/O and is safe from any thread.  The sink is
    called from the actor thread only.  See the module docstring for the guarantees.

    :param sink: where statuses go (``K8sReporter``, ``FileReporter``, ...).
    :param scheduler: delivers retry timers; by default one is started with the
        reporter and stopped with it.  Tests pass a ``ManualScheduler``.
    :param backoff: retry delays for sink failures.
    :param resend_unchanged_after: if set, a status equal to the last one written is
        written again once this many seconds have passed since that write, so a
        periodic re-assert can repair a status that someone else overwrote.
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
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
        observer: ReporterObserver | None = None,
    ) -> None:
        self._sink = sink
        self.observer = observer
        self._scheduler = scheduler
        self._owned_scheduler: ThreadScheduler | None = None
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._resend_unchanged_after = resend_unchanged_after
        self._flush_timeout = flush_timeout
        # The one-slot mailbox shared with the actor: deque appends and pops are atomic,
        # and maxlen=1 makes an append replace whatever was there (latest wins).
        self._slot: collections.deque[Status] = collections.deque(maxlen=1)
        self._wake_armed = True
        self._received = 0
        # Statuses replaced in the slot before the actor took them (sender side), and how
        # many of those the actor has told the observer about.
        self._overwritten = 0
        self._overwritten_emitted = 0
        self._lock = threading.Lock()  # sender side only: closed flag vs. slot writes
        self._closed = False
        self._actor_ref: pykka.ActorRef[Any] | None = None
        self._actor_stats = ReporterStats()
        self._pending_view: Status | None = None
        self._last_written_view: Status | None = None
        self._sink_shutdown: Shutdown | None = None
        self._shutdown: OnceShutdown | None = None
        self._restarts = 0

    # ------------------------------------------------------------------ Reporter API

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
            if self._slot:
                self._overwritten += 1
            self._slot.append(status)
            if not self._wake_armed:
                return
            self._wake_armed = False
            try:
                actor_ref.tell(_WAKE)
            except pykka.ActorDeadError:
                self._respawn_locked("actor found dead on report")

    # ------------------------------------------------------------------ inspection

    @property
    def sink(self) -> Reporter:
        """The wrapped sink (what metrics label the writes with)."""
        return self._sink

    def stats(self) -> ReporterStats:
        """A consistent snapshot of the counters (``received`` counts the sender side)."""
        snapshot = self._actor_stats
        received = self._received
        in_slot = len(self._slot)
        return attrs.evolve(
            snapshot,
            received=received,
            coalesced=received - snapshot.received - in_slot + snapshot.coalesced,
            pending=snapshot.pending or in_slot > 0,
        )

    @property
    def restarts(self) -> int:
        """How many times the actor was found dead and replaced."""
        return self._restarts

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until the actor has handled everything sent to it before this call."""
        actor_ref = self._actor_ref
        if actor_ref is None:
            raise ReporterNotStartedError("ActorReporter.wait_idle called before start()")
        actor_ref.ask(_BARRIER, timeout=timeout)

    def crash_actor_for_test(self, error: Exception) -> None:
        """Make the actor fail inside pykka (outside our guard), as a bug would."""
        if self._actor_ref is not None:
            self._actor_ref.tell(CrashForTest(error))

    def overwritten_since_asked(self) -> int:
        """Statuses replaced in the slot (before the actor took them) since the last call.

        Only the actor thread calls it (one actor at a time), so the count it has taken
        needs no lock; the sender's counter only grows.
        """
        overwritten = self._overwritten - self._overwritten_emitted
        self._overwritten_emitted += overwritten
        return overwritten

    # ------------------------------------------------------------------ internals

    def _active_scheduler(self) -> Scheduler:
        if self._scheduler is not None:
            return self._scheduler
        if self._owned_scheduler is None:
            self._owned_scheduler = ThreadScheduler(name="vmcp-reporter-timers")
        return self._owned_scheduler

    def _spawn_actor(self) -> None:
        self._wake_armed = False
        self._actor_ref = _ReporterActor.start(self)
        # Whatever sits in the slot (from before a crash) is picked up by the new actor.
        self._actor_ref.tell(_WAKE)

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
        actor.cancel_retry()
        pending = actor.pending
        with self._lock:
            if self._actor_ref is not actor.actor_ref:
                return
            if pending is not None and not self._slot:
                self._slot.appendleft(pending)
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
            pending = self._pending_view or (self._slot[0] if self._slot else None)
            if pending is not None:
                stats = self.stats()
                error = ShutdownTimeoutError(
                    f"status not flushed within {budget:g} s: phase={pending.phase.value} "
                    f"message={pending.message!r} after {stats.failed_attempts} failed attempt(s)"
                    + (f"; last error: {stats.last_error}" if stats.last_error else ""),
                    pending=pending,
                )
        try:
            # A little grace beyond the deadline lets a healthy actor finish its stop;
            # an actor stuck inside a sink call is a daemon and is left behind, logged.
            actor_ref.stop(block=True, timeout=max(deadline - time.monotonic(), 0.0) + 0.5)
        except pykka.Timeout:
            log.error("status reporter actor did not stop in time: its sink call is stuck")
        return error
