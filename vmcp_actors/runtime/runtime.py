"""``Runtime``: the embedding API of a vMCP process.

It wires the pieces in the only order that loses nothing and tears them down in the
reverse one:

start
    1. the reporter (wrapped in an :class:`ActorReporter`, so reporting never blocks);
    2. the I/O loop thread and the timer thread;
    3. the supervisor, which starts the health actor first -- it must be subscribed
       before the first backend event -- and then one actor per backend.

stop (bounded by its timeout, idempotent)
    1. every backend is stopped (sessions closed, processes reaped);
    2. the health actor builds the final status, which is reported;
    3. the actors stop, the reporter flushes through its retries and stops;
    4. the loop and timer threads end.  Nothing is left running.

``status()`` and ``snapshots()`` read the latest immutable values that the actors
publish, without I/O and without waiting on any actor.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, cast

import pykka

from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler
from vmcp_actors.backend.actor import AuthRequiredHook, BackendSnapshot, SnapshotCell
from vmcp_actors.backend.lifecycle import LifecyclePolicy
from vmcp_actors.config.spec import BackendSpec, RuntimeConfig
from vmcp_actors.dataplane.api import DataplaneAPI
from vmcp_actors.dataplane.notify import StatusTap
from vmcp_actors.dataplane.plane import Dataplane
from vmcp_actors.dataplane.router import Router
from vmcp_actors.errors import VmcpError
from vmcp_actors.health.actor import BuildFinalStatus, Refresh, StatusCell
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.base import Reporter, Shutdown
from vmcp_actors.runtime.supervisor import (
    AddBackendCommand,
    BackendBoard,
    RemoveBackendCommand,
    RestartPolicy,
    StopAllCommand,
    Supervisor,
    UpdateBackendCommand,
)

__all__ = ["Runtime", "RuntimeStoppedError"]

log = logging.getLogger(__name__)

#: How long a runtime command waits for the supervisor to answer.
COMMAND_TIMEOUT: Final = 10.0
#: What ``stop()`` keeps back for the reporter's final flush when backends are slow.
_FLUSH_SHARE: Final = 0.4


class RuntimeStoppedError(VmcpError, RuntimeError):
    """A command was sent to a runtime that has been stopped."""


class Runtime(DataplaneAPI):
    """A running vMCP: backends, health monitor, status reporter, data plane.  Use :meth:`start`.

    The data plane API (``tools()``, ``call_tool()``, ``subscribe()``, ...) comes from
    :class:`~vmcp_actors.dataplane.api.DataplaneAPI`.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        reporter: ActorReporter,
        reporter_shutdown: Shutdown,
        io: LoopThread,
        owned_scheduler: ThreadScheduler | None,
        supervisor: pykka.ActorRef[Supervisor],
        status_cell: StatusCell,
        board: BackendBoard,
        dataplane: Dataplane,
    ) -> None:
        self.config = config
        self._dataplane = dataplane
        self._router = Router(dataplane.cell)
        self.reporter = reporter
        self._reporter_shutdown = reporter_shutdown
        self._io = io
        self._owned_scheduler = owned_scheduler
        self._supervisor = supervisor
        self._status_cell = status_cell
        self._board = board
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._final_status: Status | None = None

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
    ) -> Runtime:
        """Start everything and return at once; backends connect in the background.

        ``reporter`` defaults to :func:`~vmcp_actors.reporting.factory.new_reporter`
        (Kubernetes when ``VMCP_NAME``/``VMCP_NAMESPACE`` are set, logging otherwise).
        It is wrapped in an :class:`ActorReporter` unless it already is one; the wrapper
        re-sends an unchanged status once per status interval so a status someone else
        overwrote is repaired.
        """
        config.validate()
        failure = config.failure_handling
        if reporter is None:
            from vmcp_actors.reporting.factory import new_reporter

            reporter = new_reporter()
        actor_reporter = (
            reporter
            if isinstance(reporter, ActorReporter)
            else ActorReporter(reporter, resend_unchanged_after=failure.status_reporting_interval)
        )
        reporter_shutdown = actor_reporter.start()
        io = LoopThread(name="vmcp-aio")
        owned: ThreadScheduler | None = None
        if scheduler is None:
            scheduler = owned = ThreadScheduler(name="vmcp-timers")
        timers: Scheduler = scheduler
        dataplane = Dataplane(config.aggregation)
        try:
            io.start()
            status_cell = StatusCell()
            board = BackendBoard()
            health = failure.health_config()
            supervisor = Supervisor.start(
                io=io,
                scheduler=timers,
                reporter=StatusTap(actor_reporter, dataplane.notifier),
                health_config=health,
                status_interval=failure.status_reporting_interval,
                status_cell=status_cell,
                initial_wait=max((spec.connect_timeout for spec in config.backends), default=0.0) + health.timeout,
                board=board,
                lifecycle_policy=lifecycle_policy,
                restart_policy=restart_policy or RestartPolicy(),
                on_auth_required=on_auth_required,
                backend_hooks=dataplane.backend_hooks,
                on_health=dataplane.on_health,
            )
        except BaseException:
            dataplane.stop(5.0)
            io.stop(5.0)
            if owned is not None:
                owned.stop()
            reporter_shutdown(5.0)
            raise
        runtime = cls(config, actor_reporter, reporter_shutdown, io, owned, supervisor, status_cell, board, dataplane)
        try:
            for spec in config.backends:
                runtime.add_backend(spec)
            supervisor.tell(Refresh())
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
    def stopped(self) -> bool:
        return self._stopped

    # ------------------------------------------------------------------ commands

    def add_backend(self, spec: BackendSpec) -> BackendSnapshot:
        """Start supervising a new backend; it appears in the status at once."""
        future: concurrent.futures.Future[SnapshotCell] = concurrent.futures.Future()
        self._dataplane.track(spec.name)
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

    def _command(self, message: object, future: concurrent.futures.Future[Any]) -> Any:
        if self._stopped:
            raise RuntimeStoppedError("the runtime has been stopped")
        try:
            self._supervisor.tell(message)
        except pykka.ActorDeadError:
            raise RuntimeStoppedError("the runtime's supervisor is not running") from None
        return future.result(timeout=COMMAND_TIMEOUT)

    def crash_backend_for_test(self, name: str, error: Exception) -> None:
        """Make a backend's actor fail outside its guard, as an unexpected bug would."""
        from vmcp_actors.actorkit.guard import CrashForTest

        ref = self._ask_ref(("child_ref", name))
        if ref is None:
            raise KeyError(name)
        ref.tell(CrashForTest(error))

    def crash_health_for_test(self, error: Exception) -> None:
        """Make the health actor fail outside its guard."""
        from vmcp_actors.actorkit.guard import CrashForTest

        health = self._ask_ref("health_ref")
        if health is not None:
            health.tell(CrashForTest(error))

    def _ask_ref(self, query: object, timeout: float = COMMAND_TIMEOUT) -> pykka.ActorRef[Any] | None:
        return cast("pykka.ActorRef[Any] | None", self._supervisor.ask(query, timeout=timeout))

    # ------------------------------------------------------------------ shutdown

    def stop(self, timeout: float = 10.0) -> None:
        """Stop backends, report and flush the final status, stop everything.  Idempotent.

        Bounded by ``timeout`` even if a backend hangs: whatever has not stopped by its
        share of the budget is abandoned (and its I/O cancelled with the loop).
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        deadline = time.monotonic() + timeout
        backends_deadline = time.monotonic() + timeout * (1 - _FLUSH_SHARE)

        def left(until: float) -> float:
            return max(until - time.monotonic(), 0.0)

        try:
            stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._supervisor.tell(StopAllCommand(stopped))
            stopped.result(timeout=left(backends_deadline))
        except (concurrent.futures.TimeoutError, pykka.ActorDeadError):
            log.error("some backends did not stop within %.1f s; abandoning them", timeout * (1 - _FLUSH_SHARE))
        try:
            health = self._ask_ref("health_ref", timeout=max(left(deadline), 0.1))
            final = None if health is None else health.ask(BuildFinalStatus(), timeout=max(left(deadline), 0.1))
            if isinstance(final, Status):
                self._final_status = final
        except (pykka.Timeout, pykka.ActorDeadError):
            log.error("could not build the final status in time; the last one stands")
        try:
            self._supervisor.stop(block=True, timeout=max(left(deadline), 0.1))
        except pykka.Timeout:
            log.error("supervisor did not stop in time")
        try:
            self._reporter_shutdown(max(left(deadline), 0.1))
        finally:
            self._dataplane.stop(max(left(deadline), 0.5))
            self._io.stop(max(left(deadline), 1.0))
            if self._owned_scheduler is not None:
                self._owned_scheduler.stop()
            _join_actor_threads(deadline)
        log.info("vmcp-actors runtime stopped")


def _join_actor_threads(deadline: float) -> None:
    """Wait (bounded) for stopped actors' threads to end, so none outlives ``stop``."""
    for thread in threading.enumerate():
        if thread is threading.current_thread() or not thread.name.startswith(
            ("BackendActor", "HealthActor", "Supervisor")
        ):
            continue
        thread.join(max(deadline - time.monotonic(), 0.05))
