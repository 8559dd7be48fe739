"""``Runtime``: the embedding API of a vMCP process.

It wires the pieces in the only order that loses nothing (built by
:mod:`~vmcp_actors.runtime.startup`) and tears them down in the reverse one:

start
    1. the reporter (wrapped in an :class:`ActorReporter`, so reporting never blocks);
    2. the I/O loop thread and the timer thread;
    3. the supervisor, which starts the health actor first -- it must be subscribed
       before the first backend event -- and then one actor per backend.
    The metrics observer (unless ``metrics=False``) starts before all of them and is
    handed to each; it stops last, once the final status write has been counted.

stop (bounded by its timeout, idempotent)
    1. every backend is stopped (sessions closed, processes reaped);
    2. the health actor builds the final status, which is reported;
    3. the actors stop, the reporter flushes through its retries and stops;
    4. the loop and timer threads end.  Nothing is left running.

A runtime joins only the threads it started (its actors', recorded as they are
spawned, its loop and its timers), so another runtime in the same process neither
slows its stop nor is touched by it.

``status()`` and ``snapshots()`` read the latest immutable values that the actors
publish, without I/O and without waiting on any actor.

With leader election (:mod:`vmcp_actors.leadership`; on by default in Kubernetes mode)
every replica probes and builds its status, but only the leader's status sink writes;
the moment a replica starts leading it re-sends its latest status, and on ``stop`` the
leader releases the Lease after its final status is flushed, so a follower takes over
(and replaces that final status) at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import pykka

from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.actor import AuthRequiredHook
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.backend.snapshot import BackendSnapshot, SnapshotCell
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.dataplane.api import DataplaneAPI
from vmcp_actors.dataplane.router import Router
from vmcp_actors.errors import ReporterClosedError, RuntimeStoppedError
from vmcp_actors.health.messages import BuildFinalStatus, Refresh
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.metrics.state import RuntimeView
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter
from vmcp_actors.runtime.messages import (
    AddBackendCommand,
    BackendActorQuery,
    HealthActorQuery,
    RemoveBackendCommand,
    StopAllCommand,
    UpdateBackendCommand,
)
from vmcp_actors.runtime.startup import RuntimeParts, start_parts
from vmcp_actors.runtime.supervision import RestartPolicy

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from vmcp_actors.leadership.service import Leadership

__all__ = ["Runtime", "RuntimeStoppedError"]

log = logging.getLogger(__name__)

#: How long a runtime command waits for the supervisor to answer.
COMMAND_TIMEOUT: Final = 10.0
#: What ``stop()`` keeps back for the reporter's final flush when backends are slow.
_FLUSH_SHARE: Final = 0.4
#: A new leader re-sends the latest status until no newer one appeared meanwhile (bounded).
_RESEND_ROUNDS: Final = 10


class Runtime(DataplaneAPI):
    """A running vMCP: backends, health monitor, status reporter, data plane.  Use :meth:`start`.

    The data plane API (``tools()``, ``call_tool()``, ``subscribe()``, ...) comes from
    :class:`~vmcp_actors.dataplane.api.DataplaneAPI`.
    """

    def __init__(self, config: RuntimeConfig, parts: RuntimeParts) -> None:
        self.config = config
        self._dataplane = parts.dataplane
        metrics = parts.metrics
        self._router = Router(parts.dataplane.cell, None if metrics is None else metrics.record_tool_call)
        #: The metrics (``metrics.registry`` to scrape); ``None`` when started with ``metrics=False``.
        self.metrics = metrics
        self.reporter = parts.reporter
        self._reporter_shutdown = parts.reporter_shutdown
        self._io = parts.io
        self._owned_scheduler = parts.owned_scheduler
        self._supervisor, self._supervisor_thread = parts.supervisor, parts.supervisor_thread
        self._actor_threads = parts.actor_threads
        self._status_cell = parts.status_cell
        self._board = parts.board
        self._stopped = False
        # Every stop() waits for the one that does the work, as the reporter's shutdown does:
        # a second caller returning at once would let its host tear down under a running stop.
        self._shutdown = OnceShutdown(self._stop_once)
        self._final_status: Status | None = None
        self._leadership = parts.leadership

    # ------------------------------------------------------------------ construction

    @classmethod
    def start(
        cls,
        config: RuntimeConfig,
        reporter: Reporter | None = None,
        *,
        scheduler: Scheduler | None = None,
        lifecycle_policy: LifecyclePolicy | None = None,
        restart_policy: RestartPolicy | None = None,
        on_auth_required: AuthRequiredHook | None = None,
        leader_election: LeaderElection | Leadership | None = None,
        metrics: CollectorRegistry | Literal[False] | None = None,
    ) -> Runtime:
        """Start everything and return at once; backends connect in the background.

        ``reporter`` defaults to :func:`~vmcp_actors.reporting.factory.new_reporter`
        (Kubernetes when ``VMCP_NAME``/``VMCP_NAMESPACE`` are set, logging otherwise).
        It is wrapped in an :class:`ActorReporter` unless it already is one; the wrapper
        re-sends an unchanged status once per status interval so a status someone else
        overwrote is repaired, and holds a status whose only news is when backends were
        last checked until the interval is over (a real change still goes out at once).

        ``lifecycle_policy`` tunes the backends' reconnects; its probe timeout is
        replaced by ``config.failure_handling.health_check_timeout``, the one owner of
        how long a health probe may take.

        ``leader_election``: with no ``reporter``, leader election runs in Kubernetes
        mode unless ``VMCP_LEADER_ELECTION=false`` (a :class:`LeaderElection` overrides
        the settings, ``enabled=False`` turns it off); with your own reporter, pass a
        :class:`~vmcp_actors.leadership.service.Leadership` whose gate it consults.

        ``metrics`` is the Prometheus registry the runtime's metrics are defined in; by
        default a private one, so runtimes in one process never clash (read it from
        ``runtime.metrics.registry``).  ``False`` runs without metrics.
        """
        from vmcp_actors.leadership.service import resolve

        config.validate()
        reporter, leadership = resolve(reporter, leader_election)
        parts = start_parts(
            config,
            reporter,
            leadership,
            scheduler=scheduler,
            lifecycle_policy=lifecycle_policy,
            restart_policy=restart_policy,
            on_auth_required=on_auth_required,
            metrics=metrics,
        )
        runtime = cls(config, parts)
        runtime._watch_with_metrics()
        try:
            if leadership is not None:
                leadership.on_change(runtime._leadership_changed)
                leadership.start()
            for spec in config.backends:
                runtime.add_backend(spec)
            runtime._supervisor.tell(Refresh())
        except BaseException:
            runtime.stop(5.0)
            raise
        log.info("vmcp-actors runtime started with %d backends", len(config.backends))
        return runtime

    # ------------------------------------------------------------------ reading

    def status(self) -> Status | None:
        """The latest status built (``None`` only before the first one), without I/O."""
        if self._final_status is not None:
            return self._final_status
        return self._status_cell.value

    def snapshots(self) -> Mapping[str, BackendSnapshot]:
        """Each backend's latest snapshot, by name, without waiting on any actor."""
        return {name: cell.value for name, cell in sorted(self._board.cells.items())}

    @property
    def leading(self) -> bool | None:
        """Whether this replica writes the status now; None without leader election."""
        return None if self._leadership is None else self._leadership.leading

    @property
    def leadership(self) -> Leadership | None:
        """The leader election this runtime takes part in, if any."""
        return self._leadership

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` has been called (commands then raise :class:`RuntimeStoppedError`)."""
        return self._stopped

    # ------------------------------------------------------------------ commands

    def add_backend(self, spec: BackendSpec) -> BackendSnapshot:
        """Start supervising a new backend; it appears in the status at once."""
        future: concurrent.futures.Future[SnapshotCell] = concurrent.futures.Future()
        self._dataplane.track(spec.name, spec.tool_prefix)
        try:
            cell: SnapshotCell = self._command(AddBackendCommand(spec, future), future)
        except BaseException:
            if spec.name not in self._board.cells:
                self._dataplane.forget(spec.name)
            raise
        return cell.value

    def remove_backend(self, name: str) -> None:
        """Stop a backend and drop it from the status."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._command(RemoveBackendCommand(name, future), future)
        self._dataplane.forget(name)

    def update_backend(self, spec: BackendSpec) -> None:
        """Give a backend a new spec; it restarts only if ``config_changed`` says so."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._command(UpdateBackendCommand(spec, future), future)
        self._dataplane.track(spec.name, spec.tool_prefix)

    def _watch_with_metrics(self) -> None:
        """Let the metrics read this runtime's snapshots, and follow its leadership."""
        if self.metrics is None:
            return
        reporter = self.reporter
        self.metrics.bind_state(lambda: RuntimeView(self.status(), self.snapshots(), reporter.stats()))
        if self._leadership is not None:
            self.metrics.watch_leadership(self._leadership)

    def _leadership_changed(self, leading: bool) -> None:
        """On the elector's thread: a new leader writes its latest status at once.

        Re-read after each hand-over: a newer status that the health actor built meanwhile
        is reported by it after being published, so once the latest read is the one just
        handed over, nothing older can land after something newer.
        """
        if not leading or self._stopped:
            return
        sent: Status | None = None
        for _ in range(_RESEND_ROUNDS):
            latest = self._status_cell.value
            if latest is None or latest is sent:
                return
            try:
                self.reporter.rewrite(latest)
            except ReporterClosedError:
                return
            sent = latest

    def _command(self, message: object, future: concurrent.futures.Future[Any]) -> Any:
        if self._stopped:
            raise RuntimeStoppedError("the runtime has been stopped")
        try:
            self._supervisor.tell(message)
        except pykka.ActorDeadError:
            raise RuntimeStoppedError("the runtime's supervisor is not running") from None
        return future.result(timeout=COMMAND_TIMEOUT)

    def _actor_ref(
        self, query: HealthActorQuery | BackendActorQuery, timeout: float = COMMAND_TIMEOUT
    ) -> pykka.ActorRef[Any] | None:
        """The ref the supervisor holds for ``query``; also :mod:`vmcp_actors.testing`'s one hook into a runtime."""
        return cast("pykka.ActorRef[Any] | None", self._supervisor.ask(query, timeout=timeout))

    # ------------------------------------------------------------------ shutdown

    def stop(self, timeout: float = 10.0) -> None:
        """Stop backends, report and flush the final status, stop everything.  Idempotent.

        Bounded by ``timeout`` even if a backend hangs: whatever has not stopped by its
        share of the budget is abandoned (and its I/O cancelled with the loop).  A call
        made while another thread is stopping the runtime returns only once that stop has
        finished (raising :class:`~vmcp_actors.errors.ShutdownTimeoutError` if it is
        still running after ``timeout``), and raises what that stop raised.
        """
        self._stopped = True
        self._shutdown(timeout)

    def _stop_once(self, timeout: float | None) -> None:
        timeout = 10.0 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        backends_deadline = time.monotonic() + timeout * (1 - _FLUSH_SHARE)
        self._stop_backends(backends_deadline, timeout * (1 - _FLUSH_SHARE))
        self._build_final_status(deadline)
        try:
            self._supervisor.stop(block=True, timeout=_left(deadline, 0.1))
        except pykka.Timeout:
            log.error("supervisor did not stop in time")
        try:
            self._reporter_shutdown(_left(deadline, 0.1))
        finally:
            if self._leadership is not None:
                self._leadership.stop(_left(deadline, 1.0))  # after the final flush: release the Lease
            self._dataplane.stop(_left(deadline, 0.5))
            self._io.stop(_left(deadline, 1.0))
            if self._owned_scheduler is not None:
                self._owned_scheduler.stop()
            self._join_actor_threads(deadline)
            if self.metrics is not None:
                if self._leadership is not None:
                    self.metrics.set_leader(self._leadership.identity, False)  # the Lease is released
                self.metrics.stop(_left(deadline, 1.0))
        log.info("vmcp-actors runtime stopped")

    def _stop_backends(self, deadline: float, budget: float) -> None:
        try:
            stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._supervisor.tell(StopAllCommand(stopped))
            stopped.result(timeout=_left(deadline))
        except (concurrent.futures.TimeoutError, pykka.ActorDeadError):
            log.error("some backends did not stop within %.1f s; abandoning them", budget)

    def _build_final_status(self, deadline: float) -> None:
        try:
            health = self._actor_ref(HealthActorQuery(), timeout=_left(deadline, 0.1))
            final = None if health is None else health.ask(BuildFinalStatus(), timeout=_left(deadline, 0.1))
            if isinstance(final, Status):
                self._final_status = final
        except (pykka.Timeout, pykka.ActorDeadError):
            log.error("could not build the final status in time; the last one stands")

    def _join_actor_threads(self, deadline: float) -> None:
        """Wait (bounded) for this runtime's actor threads to end, so none outlives ``stop``.

        The supervisor first: once its thread has ended, every actor it started is recorded.
        """
        self._supervisor_thread.join(_left(deadline))
        alive = [t for t in (self._supervisor_thread, *self._actor_threads.join(deadline)) if t.is_alive()]
        if alive:
            log.error("actor threads still running after stop: %s", ", ".join(t.name for t in alive))


def _left(deadline: float, floor: float = 0.0) -> float:
    """Seconds until ``deadline`` (monotonic), at least ``floor``."""
    return max(deadline - time.monotonic(), floor)
