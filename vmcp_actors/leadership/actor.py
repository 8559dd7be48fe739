"""The elector: a thin actor that feeds the pure election rules and performs their effects.

:mod:`vmcp_actors.leadership.election` decides everything; this shell only

* stamps each message with the time it is handled (monotonic clock, wall clock, a
  random draw for the candidates' jitter) and feeds it to ``transition``;
* publishes the new state to the :class:`~vmcp_actors.leadership.gate.ElectionGate`
  *before* performing any effect, so a sink stops writing before a release goes out
  and may write as soon as ``StartedLeading`` is announced;
* performs the effects: Lease requests on an :class:`IoWorker` (results come back as
  messages tagged with the write attempt), ticks through the actorkit ``Scheduler``,
  the leadership callbacks on its own thread (they must not block);
* keeps a watch of the Lease open on a :class:`Watcher` thread, so a follower sees a
  release (or a new holder) within milliseconds instead of at its next poll.

Observations older than what the elector already saw are dropped: the watch and the
GETs race, and an old version of the Lease arriving after a newer one would make a
fresh leader step down for nothing.  Versions are compared as etcd revisions when
both are integers (as every API server stores them), else taken as they come.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final

import attrs
import pykka

from vmcp_actors.actorkit.guard import GuardedActor, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, Timer
from vmcp_actors.leadership import election as rules
from vmcp_actors.leadership.api_errors import Conflict
from vmcp_actors.leadership.gate import ElectionGate
from vmcp_actors.leadership.lease_client import LeaseClient, StoredLease, WatchEvent
from vmcp_actors.leadership.worker import IoWorker

__all__ = ["ElectorActor", "LeadershipCallback"]

log = logging.getLogger(__name__)

#: Called with True on StartedLeading and False on StoppedLeading, on the elector's thread.
LeadershipCallback = Callable[[bool], None]


# --------------------------------------------------------------------------- messages


@attrs.frozen
class _TickDue:
    token: int


@attrs.frozen
class _Observed:
    """A GET answer or a watch event; ``lease`` None means the Lease does not exist."""

    lease: StoredLease | None


@attrs.frozen
class _Written:
    attempt: int
    lease: StoredLease


@attrs.frozen
class _Conflicted:
    attempt: int


@attrs.frozen
class _Failed:
    attempt: int
    reason: str


@attrs.frozen
class ReleaseRequest:
    """Graceful stop: release the Lease if held; ``done`` resolves once the elector has finished."""

    done: Future[None]


_LOG_REPEAT_EVERY: Final = 30.0


class ElectorActor(GuardedActor):
    """Feeds :func:`~vmcp_actors.leadership.election.transition`; all its state is private to it."""

    def __init__(
        self,
        state: rules.ElectorState,
        client: LeaseClient,
        gate: ElectionGate,
        scheduler: Scheduler,
        worker: IoWorker,
        on_change: LeadershipCallback,
        rng: random.Random,
    ) -> None:
        super().__init__(f"elector {state.config.namespace}/{state.config.lease_name} as {state.config.identity}")
        self._state = state
        self._client = client
        self._gate = gate
        self._scheduler = scheduler
        self._worker = worker
        self._on_change = on_change
        self._rng = rng
        self._term = 0
        self._newest_version: str | None = None
        self._tick_token = 0
        self._tick: Timer | None = None
        self._release_waiters: list[Future[None]] = []
        # Error throttling for the requests: touched only by jobs on the worker thread.
        self._last_error = ""
        self._last_error_at = -_LOG_REPEAT_EVERY

    # ------------------------------------------------------------------ pykka hooks

    def on_start(self) -> None:
        """The first Tick reads the Lease."""
        self._feed(rules.Tick(self._now()))

    def on_stop(self) -> None:
        """No more ticks; whoever waits for a release hears that it will not happen."""
        if self._tick is not None:
            self._tick.cancel()
        self._gate.close()
        self._resolve_release_waiters()

    def handle(self, message: Any) -> None:
        """One message in, the rules' effects out."""
        now = self._now()
        if isinstance(message, _TickDue):
            if message.token == self._tick_token:
                self._feed(rules.Tick(now))
        elif isinstance(message, _Observed):
            self._on_observed(message.lease, now)
        elif isinstance(message, _Written):
            self._remember_version(message.lease.resource_version)
            lease = message.lease
            self._feed(rules.WriteSucceeded(message.attempt, lease.record, lease.resource_version, now))
        elif isinstance(message, _Conflicted):
            self._feed(rules.WriteConflicted(message.attempt, now))
        elif isinstance(message, _Failed):
            self._feed(rules.WriteFailed(message.attempt, now, message.reason))
        elif isinstance(message, ReleaseRequest):
            self._release_waiters.append(message.done)
            self._feed(rules.ReleaseRequested(now))
        else:
            log.warning("%s ignored unexpected message %r", self.label, message)
        if rules.finished(self._state):
            self._resolve_release_waiters()

    # ------------------------------------------------------------------ feeding the rules

    def _now(self) -> rules.Now:
        clock = self._scheduler.clock
        return rules.Now(clock.monotonic(), clock.now(), self._rng.random())

    def _on_observed(self, lease: StoredLease | None, now: rules.Now) -> None:
        if lease is not None and _older(lease.resource_version, self._newest_version):
            return
        if lease is not None:
            self._remember_version(lease.resource_version)
        record = None if lease is None else lease.record
        version = None if lease is None else lease.resource_version
        self._feed(rules.LeaseObserved(record, version, now))

    def _remember_version(self, version: str) -> None:
        if not _older(version, self._newest_version):
            self._newest_version = version

    def _feed(self, message: rules.Message) -> None:
        self._state, effects = rules.transition(self._state, message)
        if any(isinstance(effect, rules.StartedLeading) for effect in effects):
            self._term += 1
        # Publish before acting: a sink must stop before a Release goes out, and may write
        # as soon as StartedLeading is announced.
        self._gate.publish(self._state, self._term)
        for effect in effects:
            self._perform(effect)

    def _perform(self, effect: rules.Effect) -> None:
        if isinstance(effect, rules.ScheduleTick):
            self._schedule_tick(effect.at)
        elif isinstance(effect, rules.StartedLeading | rules.StoppedLeading):
            leading = isinstance(effect, rules.StartedLeading)
            holder = self._state.config.identity
            log.info("%s %s leading (term %d)", holder, "started" if leading else "stopped", self._term)
            try:
                self._on_change(leading)
            except Exception:
                log.exception("%s: leadership callback failed", self.label)
        elif isinstance(effect, rules.Get):
            self._worker.submit(self._get)
        else:
            self._worker.submit(lambda: self._write(effect))

    def _schedule_tick(self, at: float) -> None:
        if self._tick is not None:
            self._tick.cancel()
        self._tick_token += 1
        due = _TickDue(self._tick_token)
        me = self.actor_ref
        delay = max(at - self._scheduler.clock.monotonic(), 0.0)
        self._tick = self._scheduler.call_later(delay, lambda: tell_quietly(me, due))

    def _resolve_release_waiters(self) -> None:
        waiters, self._release_waiters = self._release_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ on the worker thread

    def _get(self) -> None:
        try:
            lease = self._client.get()
        except Exception as error:  # noqa: BLE001 - the rules poll again; the error is only logged
            self._log_error("read", error)
            return
        tell_quietly(self.actor_ref, _Observed(lease))

    def _write(self, effect: rules.Create | rules.Update | rules.Release) -> None:
        me = self.actor_ref
        try:
            if isinstance(effect, rules.Create):
                lease = self._client.create(effect.record)
            else:
                lease = self._client.replace(effect.record, effect.expected_resource_version)
        except Conflict:
            tell_quietly(me, _Conflicted(effect.attempt))
            return
        except Exception as error:  # noqa: BLE001 - reported to the rules, which retry
            self._log_error("write", error)
            tell_quietly(me, _Failed(effect.attempt, f"{type(error).__name__}: {error}"))
            return
        tell_quietly(me, _Written(effect.attempt, lease))

    def _log_error(self, what: str, error: Exception) -> None:
        """Warn when the error changes, or every 30 s while it lasts; debug otherwise."""
        text = f"{type(error).__name__}: {error}"
        now = self._scheduler.clock.monotonic()
        if text != self._last_error or now - self._last_error_at >= _LOG_REPEAT_EVERY:
            self._last_error, self._last_error_at = text, now
            log.warning("%s: cannot %s the Lease: %s", self.label, what, text)
        else:
            log.debug("%s: cannot %s the Lease: %s", self.label, what, text)


def observe_watch_event(target: pykka.ActorRef[Any], event: WatchEvent) -> None:
    """Hand a watch event to the elector (from the watch thread)."""
    tell_quietly(target, _Observed(event.lease))


def _older(version: str, newest: str | None) -> bool:
    """Whether ``version`` precedes ``newest`` (False when either is not an etcd revision)."""
    if newest is None:
        return False
    try:
        return int(version) < int(newest)
    except ValueError:
        return False
