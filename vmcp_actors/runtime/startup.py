"""Starting a runtime's parts in the one order that loses nothing, and undoing a half-done start.

:class:`~vmcp_actors.runtime.runtime.Runtime` documents the order (reporter, then the
loop and timer threads, then the supervisor, which starts the health actor before any
backend; metrics around all of them).  Building the parts is kept apart from the
embedding API because the hard part is failure: if any step raises, everything started
so far must be stopped again, in reverse, before the error reaches the caller, so a
failed ``Runtime.start`` leaves no thread, process or Lease behind.  :func:`start_parts`
does exactly that and hands the runtime every part in one :class:`RuntimeParts`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

import attrs
import pykka

from vmcp_actors.actorkit.guard import OwnedThreads
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import Scheduler, ThreadScheduler
from vmcp_actors.backend.actor import AuthRequiredHook
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.dataplane.notify import StatusTap
from vmcp_actors.dataplane.plane import Dataplane
from vmcp_actors.health.probe_schedule import initial_wait
from vmcp_actors.health.status_cell import StatusCell
from vmcp_actors.metrics.observer import MetricsObserver
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.protocol import Reporter, Shutdown
from vmcp_actors.runtime.supervision import RestartPolicy
from vmcp_actors.runtime.supervisor import BackendBoard, Supervisor

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from vmcp_actors.leadership.service import Leadership

__all__ = ["RuntimeParts", "start_parts"]


@attrs.frozen(eq=False)
class RuntimeParts:
    """Everything a started runtime owns and must stop again."""

    reporter: ActorReporter
    reporter_shutdown: Shutdown
    io: LoopThread
    owned_scheduler: ThreadScheduler | None  # None when the embedder gave its own scheduler
    supervisor: pykka.ActorRef[Supervisor]
    supervisor_thread: threading.Thread
    actor_threads: OwnedThreads
    status_cell: StatusCell
    board: BackendBoard
    dataplane: Dataplane
    leadership: Leadership | None
    metrics: MetricsObserver | None


def start_parts(
    config: RuntimeConfig,
    reporter: Reporter,
    leadership: Leadership | None,
    *,
    scheduler: Scheduler | None,
    lifecycle_policy: LifecyclePolicy | None,
    restart_policy: RestartPolicy | None,
    on_auth_required: AuthRequiredHook | None,
    metrics: CollectorRegistry | Literal[False] | None,
) -> RuntimeParts:
    """Start the metrics, the reporter, the threads and the supervisor; on failure stop them all again.

    ``leadership`` is not started here (the runtime starts it once it can follow it),
    but it is stopped if the start fails.
    """
    failure = config.failure_handling
    actor_reporter = _wrap(reporter, leadership, failure.status_reporting_interval)
    observer = _start_metrics(metrics, actor_reporter)
    try:
        reporter_shutdown = actor_reporter.start()
    except BaseException:
        _stop_metrics(observer)
        raise
    io = LoopThread(name="vmcp-aio")
    owned: ThreadScheduler | None = None
    if scheduler is None:
        scheduler = owned = ThreadScheduler(name="vmcp-timers")
    timers: Scheduler = scheduler
    actor_threads = OwnedThreads()
    dataplane = Dataplane(config.aggregation)
    try:
        io.start()
        status_cell = StatusCell()
        board = BackendBoard()
        health = failure.health_config()
        supervisor, supervisor_thread = Supervisor.spawn(
            io=io,
            scheduler=timers,
            reporter=StatusTap(
                actor_reporter if leadership is None else leadership.tap(actor_reporter), dataplane.notifier
            ),
            health_config=health,
            status_interval=failure.status_reporting_interval,
            status_cell=status_cell,
            initial_wait=initial_wait((spec.connect_timeout for spec in config.backends), health.timeout),
            board=board,
            threads=actor_threads,
            lifecycle_policy=lifecycle_policy,
            restart_policy=restart_policy or RestartPolicy(),
            on_auth_required=on_auth_required,
            observers=() if observer is None else (observer,),
            backend_hooks=dataplane.backend_hooks,
            on_health=dataplane.on_health,
        )
    except BaseException:
        dataplane.stop(5.0)
        io.stop(5.0)
        if owned is not None:
            owned.stop()
        reporter_shutdown(5.0)
        if leadership is not None:
            leadership.stop(1.0)
        _stop_metrics(observer)
        raise
    return RuntimeParts(
        actor_reporter,
        reporter_shutdown,
        io,
        owned,
        supervisor,
        supervisor_thread,
        actor_threads,
        status_cell,
        board,
        dataplane,
        leadership,
        observer,
    )


def _wrap(reporter: Reporter, leadership: Leadership | None, interval: float) -> ActorReporter:
    """``reporter`` in an :class:`ActorReporter`, unless it already is one."""
    if isinstance(reporter, ActorReporter):
        return reporter
    # A new leader re-sends what it last handed over as a follower (never written), so
    # with leader election an unchanged status must not be skipped by the wrapper.
    resend_after = 0.0 if leadership is not None else interval
    return ActorReporter(reporter, resend_unchanged_after=resend_after, timestamp_only_after=interval)


def _start_metrics(
    metrics: CollectorRegistry | Literal[False] | None, reporter: ActorReporter
) -> MetricsObserver | None:
    """The metrics observer, watching ``reporter`` (``None`` with ``metrics=False``)."""
    if metrics is False:
        return None
    observer = MetricsObserver.start(metrics)
    observer.watch_reporter(reporter)
    return observer


def _stop_metrics(observer: MetricsObserver | None) -> None:
    if observer is not None:
        observer.stop()
