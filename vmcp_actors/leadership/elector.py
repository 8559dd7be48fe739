"""``Elector``: starts and stops the elector actor, its worker, its watch and its timers.

Everything that runs is owned here and ends in :meth:`Elector.release` (graceful: the
Lease is released first, so a follower takes over within milliseconds) or
:meth:`Elector.abandon` (what a SIGKILL leaves behind: the Lease stays held until it
expires).  Both are bounded by their timeout and idempotent, and both join every thread
they started.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

import pykka

from vmcp_actors.actorkit.timers import Clock, Scheduler, SystemClock, ThreadScheduler
from vmcp_actors.leadership import election as rules
from vmcp_actors.leadership.actor import ElectorActor, LeadershipCallback, ReleaseRequest, observe_watch_event
from vmcp_actors.leadership.gate import ElectionGate
from vmcp_actors.leadership.lease_client import LeaseClient, LeaseWatch, WatchEvent
from vmcp_actors.leadership.worker import IoWorker, Watcher, jittered

__all__ = ["Elector"]

log = logging.getLogger(__name__)


class Elector:
    """One replica's side of the election for ``config.lease_name``.

    :param config: the Lease, this replica's identity and the timing.
    :param client: the Lease's API calls.
    :param on_change: hears True on StartedLeading and False on StoppedLeading, on the
        elector's thread; it must return quickly.
    :param scheduler: delivers the elector's ticks; by default it owns one.
    """

    def __init__(
        self,
        config: rules.LeaderElectionConfig,
        client: LeaseClient,
        *,
        on_change: LeadershipCallback | None = None,
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._client = client
        self._on_change = on_change or (lambda leading: None)
        # An owned scheduler is created by start(), so an elector never started runs no thread.
        self._scheduler = scheduler
        self._owned_scheduler: ThreadScheduler | None = None
        self._clock: Clock = scheduler.clock if scheduler is not None else SystemClock()
        self._rng = rng or random.Random()
        self.gate = ElectionGate(self._clock.monotonic)
        self._worker = IoWorker(f"vmcp-elector-io-{config.identity}")
        self._watcher: Watcher[WatchEvent] = Watcher(
            f"vmcp-elector-watch-{config.identity}",
            self._open_watch,
            self._on_watch_event,
            self._on_watch_error,
            jittered(config.retry_period, config.lease_duration, self._rng),
        )
        self._actor: pykka.ActorRef[ElectorActor] | None = None
        self._actor_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def __repr__(self) -> str:
        return f"Elector({self.config.namespace}/{self.config.lease_name} as {self.config.identity})"

    @property
    def identity(self) -> str:
        """This replica's holder identity."""
        return self.config.identity

    @property
    def leading(self) -> bool:
        """Whether this replica leads now (the gate's answer)."""
        return self.gate.is_leading()

    def start(self) -> None:
        """Start the worker, the actor (whose first tick reads the Lease) and the watch."""
        with self._lock:
            if self._actor is not None or self._stopped:
                return
            scheduler = self._scheduler
            if scheduler is None:
                scheduler = self._owned_scheduler = ThreadScheduler(self._clock, name="vmcp-elector-timers")
            self._worker.start()
            state = rules.initial_state(self.config)
            self._actor, self._actor_thread = ElectorActor.spawn(
                state, self._client, self.gate, scheduler, self._worker, self._on_change, self._rng
            )
            self._watcher.start()

    def release(self, timeout: float) -> bool:
        """Graceful stop: stop leading, release the Lease if held, stop everything.

        Returns whether the release finished (or there was nothing to release) in time;
        on False the Lease simply expires.
        """
        deadline = time.monotonic() + timeout
        actor = self._begin_stop()
        if actor is None:
            return True
        done: Future[None] = Future()
        released = False
        try:
            actor.tell(ReleaseRequest(done))
            done.result(timeout=max(deadline - time.monotonic(), 0.0))
            released = True
        except (FutureTimeoutError, pykka.ActorDeadError):
            log.warning("%r: the Lease was not released within %.1f s; it will expire instead", self, timeout)
        self._shut_down(actor, deadline)
        return released

    def abandon(self, timeout: float = 5.0) -> None:
        """Stop without releasing (as a killed process would): the Lease stays until it expires."""
        actor = self._begin_stop()
        self.gate.close()
        if actor is not None:
            self._shut_down(actor, time.monotonic() + timeout)

    # ------------------------------------------------------------------ internals

    def _begin_stop(self) -> pykka.ActorRef[ElectorActor] | None:
        with self._lock:
            if self._stopped:
                return None
            self._stopped = True
            return self._actor

    def _shut_down(self, actor: pykka.ActorRef[Any], deadline: float) -> None:
        self._watcher.stop(_left(deadline))
        try:
            actor.stop(block=True, timeout=_left(deadline) + 0.5)
        except pykka.Timeout:
            log.error("%r: the elector actor did not stop in time", self)
        self.gate.close()
        self._worker.stop(_left(deadline))
        if self._owned_scheduler is not None:
            self._owned_scheduler.stop(_left(deadline))
        if self._actor_thread is not None:
            self._actor_thread.join(_left(deadline))
        alive = [t.name for t in (self._watcher.thread, self._worker.thread, self._actor_thread) if t and t.is_alive()]
        if alive:
            log.error("%r: threads still running after stop: %s", self, ", ".join(alive))

    def _open_watch(self) -> LeaseWatch:
        return self._client.open_watch()

    def _on_watch_event(self, event: WatchEvent) -> None:
        actor = self._actor
        if actor is not None:
            observe_watch_event(actor, event)

    def _on_watch_error(self, error: Exception) -> None:
        log.info("%r: the Lease watch failed (%s); the elector polls meanwhile", self, error)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)
