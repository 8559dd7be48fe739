"""``Supervisor``: the supervision pykka does not have.

The supervisor owns the set of backend actors and the health actor.  It is the only
place that starts, replaces and stops them, so adding, removing and restarting are
serialised by its inbox.

When an actor dies unexpectedly (an exception escaped its guard), its crash handler --
running on the dying thread -- releases the dead actor's I/O and tells the supervisor.
The supervisor then rebuilds it from what the dead actor last held (immutable values:
a backend's lifecycle, the health states), after a backoff, within a restart budget
(:mod:`vmcp_actors.runtime.supervision` decides both).  A backend that exhausts its
budget is escalated: the health actor marks it failed, and the phase reflects it.  The
reporter keeps its own pending status through all of this (see
:class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`), so nothing it held is lost.

Every actor it starts has its thread recorded in :class:`~vmcp_actors.actorkit.guard.OwnedThreads`,
so the runtime joins exactly its own threads when it stops.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, assert_never, get_args

import attrs
import pykka

from vmcp_actors.actorkit.guard import GuardedActor, Mailbox, OwnedThreads, tell_quietly
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.actor import AuthRequiredHook, BackendActor
from vmcp_actors.backend.lifecycle_state import Lifecycle, LifecyclePolicy
from vmcp_actors.backend.messages import StartBackend, StopBackend, Subscribe, UpdateBackend
from vmcp_actors.backend.routes import BackendHooks
from vmcp_actors.backend.snapshot import SnapshotCell, snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.errors import ValidationError
from vmcp_actors.health.actor import HealthActor, HealthHook
from vmcp_actors.health.messages import AddBackend, BackendGaveUp, Refresh, RemoveBackend, ReplaceBackendRef
from vmcp_actors.health.state import BackendHealthState
from vmcp_actors.health.status_builder import BackendView
from vmcp_actors.health.status_cell import StatusCell
from vmcp_actors.metrics.events import BackendRestarted
from vmcp_actors.reporting.protocol import Reporter
from vmcp_actors.runtime.messages import (
    AddBackendCommand,
    BackendActorQuery,
    BackendCrashed,
    HealthActorQuery,
    HealthCrashed,
    RemoveBackendCommand,
    RestartBackendDue,
    StopAllCommand,
    UpdateBackendCommand,
)
from vmcp_actors.runtime.supervision import (
    DEFAULT_RESTART_POLICY,
    GiveUp,
    RestartPolicy,
    backend_policy,
    decide_restart,
    failed_lifecycle,
    rebuilt_lifecycle,
)

__all__ = ["BackendBoard", "Supervisor", "backend_view"]

log = logging.getLogger(__name__)

#: Every message the supervisor handles; the queries are the ones with an answer.
SupervisorMessage = (
    AddBackendCommand
    | RemoveBackendCommand
    | UpdateBackendCommand
    | StopAllCommand
    | BackendCrashed
    | RestartBackendDue
    | HealthCrashed
    | Refresh
    | HealthActorQuery
    | BackendActorQuery
)
_MESSAGE_TYPES: Final = get_args(SupervisorMessage)


def backend_view(spec: BackendSpec) -> BackendView:
    """What the status shows of a configured backend (the URL without its credentials)."""
    url = spec.redacted_url or f"stdio://{spec.name}"
    return BackendView(name=spec.name, url=url, auth_type=str(spec.auth.type) if spec.auth.configured else "")


class BackendBoard:
    """The backends' snapshot cells by name, for readers outside the actors.

    Only the supervisor writes it, and always by replacing the whole mapping, so a
    reader holds a consistent mapping without locks.
    """

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: Mapping[str, SnapshotCell] = {}


@attrs.frozen
class _Child:
    spec: BackendSpec
    ref: pykka.ActorRef[Any] = attrs.field(eq=False)
    cell: SnapshotCell = attrs.field(eq=False)
    restarts: tuple[float, ...] = ()
    gave_up: bool = False


class Supervisor(GuardedActor):
    """Starts, restarts and stops the backend actors and the health actor."""

    def __init__(
        self,
        *,
        io: LoopThread,
        scheduler: Scheduler,
        reporter: Reporter,
        health_config: HealthConfig,
        status_interval: float,
        status_cell: StatusCell,
        initial_wait: float = 0.0,
        board: BackendBoard | None = None,
        threads: OwnedThreads | None = None,
        lifecycle_policy: LifecyclePolicy | None = None,
        restart_policy: RestartPolicy = DEFAULT_RESTART_POLICY,
        on_auth_required: AuthRequiredHook | None = None,
        rng: random.Random | None = None,
        observers: Sequence[Mailbox] = (),
        backend_hooks: BackendHooks | None = None,
        on_health: HealthHook | None = None,
    ) -> None:
        super().__init__("supervisor")
        # The data plane's hooks, handed to every backend actor and health actor started.
        self._backend_hooks = backend_hooks
        self._on_health = on_health
        # Told every backend event, probe outcome and actor restart (metrics).
        self._observers = tuple(observers)
        self._io = io
        self._scheduler = scheduler
        self._reporter = reporter
        self._health_config = health_config
        self._status_interval = status_interval
        self._status_cell = status_cell
        self._initial_wait = initial_wait
        self._lifecycle_policy = backend_policy(lifecycle_policy, health_config)
        self._restart_policy = restart_policy
        self._on_auth_required = on_auth_required
        self._rng = rng or random.Random()
        self._children: dict[str, _Child] = {}
        self._board = board or BackendBoard()
        self._threads = threads or OwnedThreads()
        self._health_ref: pykka.ActorRef[Any] | None = None
        # Cleanup of crashed actors' sessions still running on the loop; stop waits for it.
        self._releasing: list[concurrent.futures.Future[Any]] = []

    def on_start(self) -> None:
        """Start the health actor first: it must be subscribed before the first backend event."""
        self._health_ref = self._start_health(None)

    def on_stop(self) -> None:
        """Stop every actor this supervisor runs; the runtime joins their threads."""
        for child in self._children.values():
            child.ref.stop(block=False)
        if self._health_ref is not None:
            self._health_ref.stop(block=False)

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> Any:
        """Dispatch one message; only the queries have an answer."""
        if not isinstance(message, _MESSAGE_TYPES):
            log.warning("supervisor ignored unexpected message %r", message)
            return None
        return self._dispatch(message)

    def _dispatch(self, message: SupervisorMessage) -> pykka.ActorRef[Any] | None:
        match message:
            case AddBackendCommand():
                _settle(message.done, lambda: self._add(message.spec))
            case RemoveBackendCommand():
                self._remove(message)
            case UpdateBackendCommand():
                _settle(message.done, lambda: self._update(message.spec))
            case StopAllCommand():
                self._stop_all(message.done)
            case BackendCrashed():
                self._backend_crashed(message)
            case RestartBackendDue():
                self._restart_backend(message)
            case HealthCrashed():
                self._health_crashed(message)
            case Refresh():
                self._tell_health(message)
            case HealthActorQuery():
                return self._health_ref
            case BackendActorQuery():
                child = self._children.get(message.name)
                return None if child is None else child.ref
            case _:
                assert_never(message)
        return None

    def _tell_health(self, message: object) -> None:
        """Tell the health actor, if it is alive.

        It may have just died, with the news of it still in this inbox; nothing is lost,
        because its replacement is given every current backend when it starts.
        """
        if self._health_ref is not None:
            tell_quietly(self._health_ref, message)

    # ------------------------------------------------------------------ backends

    def _spawn(self, spec: BackendSpec, cell: SnapshotCell, initial: Lifecycle | None) -> pykka.ActorRef[Any]:
        me = self.actor_ref

        def crashed(actor: GuardedActor, error: BaseException) -> None:
            assert isinstance(actor, BackendActor)
            releasing = tuple(actor.release())
            tell_quietly(me, BackendCrashed(spec.name, actor.actor_ref, actor.lifecycle, repr(error), releasing))

        assert self._health_ref is not None
        ref, thread = BackendActor.spawn(
            spec,
            io=self._io,
            scheduler=self._scheduler,
            cell=cell,
            policy=self._lifecycle_policy,
            subscribers=[self._health_ref, *self._observers],
            on_auth_required=self._on_auth_required,
            on_crash=crashed,
            rng=random.Random(self._rng.random()),
            initial=initial,
            hooks=self._backend_hooks,
        )
        self._threads.add(thread)
        return ref

    def _add(self, spec: BackendSpec) -> SnapshotCell:
        spec.validate()
        if spec.name in self._children:
            raise ValidationError("name", f"a backend named {spec.name!r} already exists", spec.name)
        cell = SnapshotCell(snapshot_of(spec, Lifecycle(name=spec.name, remote=spec.remote)))
        ref = self._spawn(spec, cell, None)
        self._children[spec.name] = _Child(spec, ref, cell)
        self._board.cells = {**self._board.cells, spec.name: cell}
        self._tell_health(AddBackend(backend_view(spec), ref, spec.auth.configured))
        if spec.auto_start:
            ref.tell(StartBackend())
        log.info("backend=%s added (%s)", spec.name, spec.type.value)
        return cell

    def _remove(self, message: RemoveBackendCommand) -> None:
        child = self._children.pop(message.name, None)
        if child is None:
            message.done.set_exception(ValidationError("name", f"no backend named {message.name!r}", message.name))
            return
        self._board.cells = {k: v for k, v in self._board.cells.items() if k != message.name}
        self._tell_health(RemoveBackend(message.name))
        stopped: concurrent.futures.Future[None] = concurrent.futures.Future()

        def reap(_: object) -> None:
            child.ref.stop(block=False)
            if not message.done.done():
                message.done.set_result(None)

        stopped.add_done_callback(reap)
        if not tell_quietly(child.ref, StopBackend(stopped)):
            reap(None)
        log.info("backend=%s removed", message.name)

    def _update(self, spec: BackendSpec) -> None:
        spec.validate()
        child = self._children.get(spec.name)
        if child is None:
            raise ValidationError("name", f"no backend named {spec.name!r}", spec.name)
        self._children[spec.name] = attrs.evolve(child, spec=spec)
        child.ref.tell(UpdateBackend(spec))

    def _stop_all(self, done: concurrent.futures.Future[None]) -> None:
        waits: list[concurrent.futures.Future[Any]] = [f for f in self._releasing if not f.done()]
        for child in self._children.values():
            future: concurrent.futures.Future[None] = concurrent.futures.Future()
            if tell_quietly(child.ref, StopBackend(future)):
                waits.append(future)
        if not waits:
            done.set_result(None)
            return

        def one_stopped(_: object) -> None:
            # Runs on whichever thread finished a future; a future is done before its
            # callbacks run, so checking them all needs no shared counter.
            if all(f.done() for f in waits) and not done.done():
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    done.set_result(None)

        for future in waits:
            future.add_done_callback(one_stopped)

    # ------------------------------------------------------------------ supervision

    def _backend_crashed(self, message: BackendCrashed) -> None:
        self._releasing = [f for f in (*self._releasing, *message.releasing) if not f.done()]
        child = self._children.get(message.name)
        if child is None or child.ref != message.ref:
            return
        now = self._scheduler.clock.monotonic()
        decision = decide_restart(child.restarts, now, self._restart_policy, self._rng.random(), message.error)
        if isinstance(decision, GiveUp):
            self._children[message.name] = attrs.evolve(child, restarts=decision.restarts, gave_up=True)
            log.error("backend=%s %s", message.name, decision.reason)
            child.cell.value = snapshot_of(child.spec, failed_lifecycle(message.lifecycle, decision.reason))
            self._tell_health(BackendGaveUp(message.name, decision.reason))
            return
        self._children[message.name] = attrs.evolve(child, restarts=decision.restarts)
        log.error(
            "backend=%s actor crashed (%s); restarting in %.2f s (restart %d of %d allowed in %g s)",
            message.name,
            message.error,
            decision.delay,
            decision.count,
            self._restart_policy.max_restarts,
            self._restart_policy.window,
        )
        me = self.actor_ref
        restart = RestartBackendDue(message.name, message.lifecycle)
        self._scheduler.call_later(decision.delay, lambda: tell_quietly(me, restart))

    def _restart_backend(self, message: RestartBackendDue) -> None:
        child = self._children.get(message.name)
        if child is None or child.gave_up:
            return
        ref = self._spawn(child.spec, child.cell, rebuilt_lifecycle(message.lifecycle, child.spec.remote))
        self._children[message.name] = attrs.evolve(child, ref=ref)
        self._tell_health(ReplaceBackendRef(message.name, ref))
        for observer in self._observers:
            tell_quietly(observer, BackendRestarted(message.name))
        if message.lifecycle.want_running:
            ref.tell(StartBackend())
        log.info("backend=%s actor restarted", message.name)

    def _start_health(self, states: dict[str, BackendHealthState] | None) -> pykka.ActorRef[Any]:
        """Start a health actor; ``states`` are a crashed one's, ``None`` at startup."""
        me = self.actor_ref

        def crashed(actor: GuardedActor, error: BaseException) -> None:
            assert isinstance(actor, HealthActor)
            tell_quietly(me, HealthCrashed(actor.actor_ref, dict(actor.states), repr(error)))

        ref, thread = HealthActor.spawn(
            self._reporter,
            scheduler=self._scheduler,
            config=self._health_config,
            status_interval=self._status_interval,
            initial_wait=self._initial_wait,
            cell=self._status_cell,
            states=states,
            on_crash=crashed,
            observers=self._observers,
            on_health=self._on_health,
        )
        self._threads.add(thread)
        return ref

    def _health_crashed(self, message: HealthCrashed) -> None:
        if message.ref != self._health_ref:
            return
        log.error("health monitor crashed (%s); restarting it with its backend states", message.error)
        self._health_ref = ref = self._start_health(message.states)
        for name, child in self._children.items():
            tell_quietly(child.ref, Subscribe(ref))
            ref.tell(
                AddBackend(backend_view(child.spec), child.ref, child.spec.auth.configured, child.cell.value.state)
            )
            if child.gave_up:
                ref.tell(BackendGaveUp(name, "backend actor crashed too often; not restarted again"))


def _settle(future: concurrent.futures.Future[Any], action: Callable[[], Any]) -> None:
    """Run ``action`` and put its result or its error into ``future``."""
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 - the caller gets the error, the actor lives on
        future.set_exception(exc)
        return
    future.set_result(result)
