"""``EventRecorder``: Kubernetes Events about the VirtualMCPServer, from the leader only.

Every status the runtime builds is also handed to the recorder (a ``tell``: the status
path never waits for it).  Its actor folds the statuses into notices
(:mod:`vmcp_actors.leadership.status_events`), and while this replica leads it counts
them into Event series (:mod:`vmcp_actors.leadership.event_series`: aggregation, rate
limit) and has a worker thread write what the series rules say.  So an Event request
that hangs or is refused (say, a Role without ``events``) delays nothing but other
Events: status writes have their own actor, thread and connections.

Followers keep folding statuses (so a new leader compares with the latest one, not a
stale one) but record nothing; a new leader records ``LeaderElected``.  Just before each
request the worker asks the gate again, so a replica that lost the lease a moment ago
does not write.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Final

import attrs
import pykka

from vmcp_actors.actorkit.guard import GuardedActor, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler, Timer
from vmcp_actors.leadership import event_series as series
from vmcp_actors.leadership.election import Now
from vmcp_actors.leadership.event_client import EventClient
from vmcp_actors.leadership.gate import LeadershipGate
from vmcp_actors.leadership.status_events import StatusMemory, notices
from vmcp_actors.leadership.worker import IoWorker
from vmcp_actors.model.status import Status

__all__ = ["REPORTING_CONTROLLER", "EventRecorder"]

log = logging.getLogger(__name__)

#: ``reportingController`` of every Event the runtime writes.
REPORTING_CONTROLLER: Final = "toolhive.stacklok.dev/vmcp-actors"
#: After a failed write, the next flush waits at least this long (the token bucket bounds the rest).
FAILURE_PAUSE: Final = 5.0
_LOG_REPEAT_EVERY: Final = 300.0


@attrs.frozen
class _StatusSeen:
    status: Status


@attrs.frozen
class _LeadingChanged:
    leading: bool


@attrs.frozen
class _FlushDue:
    token: int


@attrs.frozen
class _Answered:
    name: str
    outcome: series.WriteOutcome


class _Barrier:
    """Answered once everything before it was handled (tests)."""


@attrs.frozen
class RecorderSetup:
    """What the recorder's actor needs; built by :class:`EventRecorder`."""

    regarding: series.ObjectRef
    identity: str
    lease_name: str
    gate: LeadershipGate
    client: EventClient
    worker: IoWorker
    scheduler: Scheduler
    policy: series.SeriesPolicy


class _RecorderActor(GuardedActor):
    """Folds statuses, counts notices into series, and hands writes to the worker."""

    def __init__(self, setup: RecorderSetup) -> None:
        super().__init__(f"event recorder {setup.regarding.namespace}/{setup.regarding.name}")
        self._setup = setup
        self._memory = StatusMemory()
        self._series = series.initial_recorder(setup.policy)
        self._leading = False
        self._flush_timer: Timer | None = None
        self._flush_token = 0
        self._pause_until = 0.0
        # Touched only by jobs on the worker thread (error throttling), never by the actor.
        self._last_error = ""
        self._last_error_at = -_LOG_REPEAT_EVERY

    def on_stop(self) -> None:
        """No flush after the stop."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()

    def handle(self, message: Any) -> None:
        """One message; then the next flush is scheduled."""
        if isinstance(message, _StatusSeen):
            self._memory, found = notices(self._memory, message.status)
            if self._leading:
                for notice in found:
                    self._record(notice.reason, notice.note, notice.note_key)
        elif isinstance(message, _LeadingChanged):
            self._leading = message.leading
            if message.leading:
                ref = self._setup.regarding
                note = (
                    f"{self._setup.identity} leads VirtualMCPServer {ref.namespace}/{ref.name} "
                    f"(Lease {self._setup.lease_name}) and writes its status"
                )
                self._record(series.Reason.LEADER_ELECTED, note, "leader")
                self._flush()
        elif isinstance(message, _FlushDue):
            if message.token == self._flush_token and self._leading:
                self._flush()
        elif isinstance(message, _Answered):
            self._series = series.answered(self._series, message.name, message.outcome)
            if message.outcome is series.WriteOutcome.FAILED:
                self._pause_until = self._now().monotonic + FAILURE_PAUSE
        elif isinstance(message, _Barrier):
            return
        else:
            log.warning("%s ignored unexpected message %r", self.label, message)
        self._schedule_flush()

    # ------------------------------------------------------------------ rules

    def _now(self) -> Now:
        clock = self._setup.scheduler.clock
        return Now(clock.monotonic(), clock.now())

    def _record(self, reason: series.Reason, note: str, note_key: str) -> None:
        now = self._now()
        occurrence = series.Occurrence(
            regarding=self._setup.regarding,
            reason=reason,
            note=note,
            note_key=note_key,
            reporting_controller=REPORTING_CONTROLLER,
            reporting_instance=self._setup.identity,
            name_suffix=format(int(now.wall.timestamp() * 1_000_000_000), "x"),
        )
        self._series, effect = series.record(self._series, occurrence, now)
        if isinstance(effect, series.Drop):
            log.debug("%s: %s %s", self.label, reason, effect.reason)
        else:
            self._submit(effect)

    def _flush(self) -> None:
        now = self._now()
        if now.monotonic < self._pause_until:
            return
        self._series, effects = series.flush(self._series, now)
        for effect in effects:
            self._submit(effect)

    def _schedule_flush(self) -> None:
        if not self._leading or not self._series.entries:
            return
        now = self._now().monotonic
        due = series.next_flush_at(self._series)
        at = now + self._series.policy.max_flush_interval if due is None else due
        at = max(at, self._pause_until)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_token += 1
        message = _FlushDue(self._flush_token)
        me = self.actor_ref
        self._flush_timer = self._setup.scheduler.call_later(max(at - now, 0.0), lambda: tell_quietly(me, message))

    def _submit(self, effect: series.Create | series.PatchSeries) -> None:
        me = self.actor_ref
        self._setup.worker.submit(lambda: self._write(me, effect))

    # ------------------------------------------------------------------ on the worker thread

    def _write(self, me: pykka.ActorRef[Any], effect: series.Create | series.PatchSeries) -> None:
        name = effect.event.name if isinstance(effect, series.Create) else effect.name
        if not self._setup.gate.is_leading():
            tell_quietly(me, _Answered(name, series.WriteOutcome.FAILED))
            return
        client = self._setup.client
        if isinstance(effect, series.Create):
            outcome, error = client.create(effect.event)
        else:
            outcome, error = client.patch_series(effect)
        if error is not None:
            self._log_error(error)
        tell_quietly(me, _Answered(name, outcome))

    def _log_error(self, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        now = self._setup.scheduler.clock.monotonic()
        if text != self._last_error or now - self._last_error_at >= _LOG_REPEAT_EVERY:
            self._last_error, self._last_error_at = text, now
            log.warning("%s: Event not written (status writes are unaffected): %s", self.label, text)


class EventRecorder:
    """Starts and stops the recorder's actor and worker; ``observe``/``leadership`` never block.

    ``scheduler`` delivers the flush timers; by default the recorder runs its own timer
    thread, created by :meth:`start` and stopped by :meth:`stop`.
    """

    def __init__(
        self,
        client: EventClient,
        *,
        identity: str,
        lease_name: str,
        gate: LeadershipGate,
        scheduler: Scheduler | None = None,
        policy: series.SeriesPolicy | None = None,
    ) -> None:
        self._client = client
        self._identity = identity
        self._lease_name = lease_name
        self._gate = gate
        self._scheduler = scheduler
        self._owned_scheduler: ThreadScheduler | None = None
        self._policy = policy or series.SeriesPolicy()
        self._worker = IoWorker(f"vmcp-events-io-{identity}")
        self._actor: pykka.ActorRef[_RecorderActor] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the timers (if owned), the worker and the actor."""
        if self._actor is not None:
            return
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = self._owned_scheduler = ThreadScheduler(name="vmcp-events-timers")
        self._worker.start()
        setup = RecorderSetup(
            regarding=self._client.regarding,
            identity=self._identity,
            lease_name=self._lease_name,
            gate=self._gate,
            client=self._client,
            worker=self._worker,
            scheduler=scheduler,
            policy=self._policy,
        )
        self._actor, self._thread = _RecorderActor.spawn(setup)

    def observe(self, status: Status) -> None:
        """A status was built (any thread; returns at once)."""
        if self._actor is not None:
            tell_quietly(self._actor, _StatusSeen(status))

    def leadership(self, leading: bool) -> None:
        """This replica started (True) or stopped (False) leading."""
        if self._actor is not None:
            tell_quietly(self._actor, _LeadingChanged(leading))

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until the actor handled everything sent before (tests)."""
        if self._actor is not None:
            self._actor.ask(_Barrier(), timeout=timeout)

    def stop(self, timeout: float) -> None:
        """Stop the actor, then let the worker finish the request in progress (bounded)."""
        deadline = time.monotonic() + timeout
        actor, self._actor = self._actor, None
        if actor is None:
            return
        try:
            actor.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            log.error("event recorder did not stop in time")
        self._worker.stop(max(deadline - time.monotonic(), 0.0))
        if self._owned_scheduler is not None:
            self._owned_scheduler.stop(max(deadline - time.monotonic(), 0.0))
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
