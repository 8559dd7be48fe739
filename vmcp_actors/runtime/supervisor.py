"""``Supervisor``: the supervision pykka does not have.

The supervisor owns the set of backend actors and the health actor.  It is the only
place that starts, replaces and stops them, so adding, removing and restarting are
serialised by its inbox.

When an actor dies unexpectedly (an exception escaped its guard), its crash handler --
running on the dying thread -- releases the dead actor's I/O and tells the supervisor.
The supervisor then rebuilds it from what the dead actor last held (immutable values:
a backend's lifecycle, the health states), after a backoff, within a restart budget.
A backend that exhausts its budget is escalated: the health actor marks it failed, and
the phase reflects it.  The reporter keeps its own pending status through all of this
(see :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`), so nothing it held is lost.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import pykka

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.guard import GuardedActor, tell_quietly
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.actor import (
    AuthRequiredHook,
    BackendActor,
    SnapshotCell,
    StartBackend,
    StopBackend,
    Subscribe,
    UpdateBackend,
    snapshot_of,
)
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import Health, Lifecycle, LifecyclePolicy, State
from vmcp_actors.backend.routes import BackendHooks
from vmcp_actors.config.spec import BackendSpec
from vmcp_actors.errors import ValidationError
from vmcp_actors.health.actor import (
    AddBackend,
    BackendGaveUp,
    HealthActor,
    HealthHook,
    Refresh,
    RemoveBackend,
    ReplaceBackendRef,
    StatusCell,
)
from vmcp_actors.health.rules import BackendHealthState, HealthConfig
from vmcp_actors.health.status_builder import BackendView
from vmcp_actors.reporting.base import Reporter

__all__ = [
    "AddBackendCommand",
    "RemoveBackendCommand",
    "RestartPolicy",
    "StopAllCommand",
    "Supervisor",
    "UpdateBackendCommand",
    "backend_view",
]

log = logging.getLogger(__name__)


@attrs.frozen
class RestartPolicy:
    """At most ``max_restarts`` within ``window`` seconds, spaced by ``backoff``."""

    max_restarts: int = 5
    window: float = 60.0
    backoff: Backoff = attrs.field(factory=lambda: Backoff(initial=0.1, maximum=5.0, factor=2.0, jitter=0.2))


DEFAULT_RESTART_POLICY: Final = RestartPolicy()


def backend_view(spec: BackendSpec) -> BackendView:
    """What the status shows of a configured backend."""
    url = spec.url or f"stdio://{spec.name}"
    return BackendView(name=spec.name, url=url, auth_type=str(spec.auth.type) if spec.auth.configured else "")


# --------------------------------------------------------------------------- messages


@attrs.frozen
class AddBackendCommand:
    spec: BackendSpec
    done: concurrent.futures.Future[SnapshotCell] = attrs.field(eq=False)


@attrs.frozen
class RemoveBackendCommand:
    name: str
    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class UpdateBackendCommand:
    spec: BackendSpec
    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class StopAllCommand:
    """Stop every backend; ``done`` resolves when all have stopped."""

    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class _BackendCrashed:
    name: str
    ref: pykka.ActorRef[Any] = attrs.field(eq=False)
    lifecycle: Lifecycle
    error: str
    releasing: tuple[concurrent.futures.Future[Any], ...] = attrs.field(default=(), eq=False)


@attrs.frozen
class _HealthCrashed:
    ref: pykka.ActorRef[Any] = attrs.field(eq=False)
    states: dict[str, BackendHealthState] = attrs.field(eq=False)
    error: str


@attrs.frozen
class _RestartBackend:
    name: str
    lifecycle: Lifecycle


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


# --------------------------------------------------------------------------- the actor


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
        lifecycle_policy: LifecyclePolicy | None = None,
        restart_policy: RestartPolicy = DEFAULT_RESTART_POLICY,
        on_auth_required: AuthRequiredHook | None = None,
        rng: random.Random | None = None,
        backend_hooks: BackendHooks | None = None,
        on_health: HealthHook | None = None,
    ) -> None:
        super().__init__("supervisor")
        # The data plane's hooks, handed to every backend actor and health actor started.
        self._backend_hooks = backend_hooks
        self._on_health = on_health
        self._io = io
        self._scheduler = scheduler
        self._reporter = reporter
        self._health_config = health_config
        self._status_interval = status_interval
        self._status_cell = status_cell
        self._initial_wait = initial_wait
        self._lifecycle_policy = lifecycle_policy or LifecyclePolicy(probe_timeout=health_config.timeout or 3600.0)
        self._restart_policy = restart_policy
        self._on_auth_required = on_auth_required
        self._rng = rng or random.Random()
        self.children: dict[str, _Child] = {}
        self.board = board or BackendBoard()
        self.health_ref: pykka.ActorRef[Any] | None = None
        # Cleanup of crashed actors' sessions still running on the loop; stop waits for it.
        self._releasing: list[concurrent.futures.Future[Any]] = []

    def on_start(self) -> None:
        self.health_ref = self._start_health({})

    def on_stop(self) -> None:
        for child in self.children.values():
            child.ref.stop(block=False)
        if self.health_ref is not None:
            self.health_ref.stop(block=False)

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> Any:
        if isinstance(message, AddBackendCommand):
            _settle(message.done, lambda: self._add(message.spec))
        elif isinstance(message, RemoveBackendCommand):
            self._remove(message)
        elif isinstance(message, UpdateBackendCommand):
            _settle(message.done, lambda: self._update(message.spec))
        elif isinstance(message, StopAllCommand):
            self._stop_all(message.done)
        elif isinstance(message, _BackendCrashed):
            self._backend_crashed(message)
        elif isinstance(message, _RestartBackend):
            self._restart_backend(message)
        elif isinstance(message, _HealthCrashed):
            self._health_crashed(message)
        elif isinstance(message, Refresh):
            self._tell_health(message)
        elif message == "health_ref":
            return self.health_ref
        elif isinstance(message, tuple) and message[:1] == ("child_ref",):
            child = self.children.get(message[1])
            return None if child is None else child.ref
        else:
            log.warning("supervisor ignored unexpected message %r", message)
        return None

    def _tell_health(self, message: object) -> None:
        """Tell the health actor, if it is alive.

        It may have just died, with the news of it still in this inbox; nothing is lost,
        because its replacement is given every current backend when it starts.
        """
        if self.health_ref is not None:
            tell_quietly(self.health_ref, message)

    # ------------------------------------------------------------------ backends

    def _spawn(self, spec: BackendSpec, cell: SnapshotCell, initial: Lifecycle | None) -> pykka.ActorRef[Any]:
        me = self.actor_ref

        def crashed(actor: GuardedActor, error: BaseException) -> None:
            assert isinstance(actor, BackendActor)
            releasing = tuple(actor.release())
            tell_quietly(me, _BackendCrashed(spec.name, actor.actor_ref, actor.lifecycle, repr(error), releasing))

        assert self.health_ref is not None
        return BackendActor.start(
            spec,
            io=self._io,
            scheduler=self._scheduler,
            cell=cell,
            policy=self._lifecycle_policy,
            subscribers=[self.health_ref],
            on_auth_required=self._on_auth_required,
            on_crash=crashed,
            rng=random.Random(self._rng.random()),
            initial=initial,
            hooks=self._backend_hooks,
        )

    def _add(self, spec: BackendSpec) -> SnapshotCell:
        spec.validate()
        if spec.name in self.children:
            raise ValidationError("name", f"a backend named {spec.name!r} already exists", spec.name)
        cell = SnapshotCell(snapshot_of(spec, Lifecycle(name=spec.name, remote=spec.remote)))
        ref = self._spawn(spec, cell, None)
        self.children[spec.name] = _Child(spec, ref, cell)
        self.board.cells = {**self.board.cells, spec.name: cell}
        assert self.health_ref is not None
        self._tell_health(AddBackend(backend_view(spec), ref, spec.auth.configured))
        if spec.auto_start:
            ref.tell(StartBackend())
        log.info("backend=%s added (%s)", spec.name, spec.type.value)
        return cell

    def _remove(self, message: RemoveBackendCommand) -> None:
        child = self.children.pop(message.name, None)
        if child is None:
            message.done.set_exception(ValidationError("name", f"no backend named {message.name!r}", message.name))
            return
        self.board.cells = {k: v for k, v in self.board.cells.items() if k != message.name}
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
        child = self.children.get(spec.name)
        if child is None:
            raise ValidationError("name", f"no backend named {spec.name!r}", spec.name)
        self.children[spec.name] = attrs.evolve(child, spec=spec)
        child.ref.tell(UpdateBackend(spec))

    def _stop_all(self, done: concurrent.futures.Future[None]) -> None:
        waits: list[concurrent.futures.Future[Any]] = [f for f in self._releasing if not f.done()]
        for child in self.children.values():
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

    def _backend_crashed(self, message: _BackendCrashed) -> None:
        self._releasing = [f for f in (*self._releasing, *message.releasing) if not f.done()]
        child = self.children.get(message.name)
        if child is None or child.ref != message.ref:
            return
        now = self._scheduler.clock.monotonic()
        window = self._restart_policy.window
        recent = tuple(t for t in child.restarts if now - t < window)
        if len(recent) >= self._restart_policy.max_restarts:
            self.children[message.name] = attrs.evolve(child, restarts=recent, gave_up=True)
            reason = (
                f"backend actor crashed {len(recent) + 1} times within {window:g} s; "
                f"not restarted again (last error: {message.error})"
            )
            log.error("backend=%s %s", message.name, reason)
            # The dead actor's last snapshot says "running"; say what is true now.
            failed = attrs.evolve(
                message.lifecycle,
                state=State.FAILED,
                health=Health.UNHEALTHY,
                last_error=Failure(FailureKind.PROTOCOL, reason),
            )
            child.cell.value = snapshot_of(child.spec, failed)
            self._tell_health(BackendGaveUp(message.name, reason))
            return
        delay = self._restart_policy.backoff.delay(len(recent) + 1, self._rng.random())
        self.children[message.name] = attrs.evolve(child, restarts=(*recent, now))
        log.error(
            "backend=%s actor crashed (%s); restarting in %.2f s (restart %d of %d allowed in %g s)",
            message.name,
            message.error,
            delay,
            len(recent) + 1,
            self._restart_policy.max_restarts,
            window,
        )
        me = self.actor_ref
        restart = _RestartBackend(message.name, message.lifecycle)
        self._scheduler.call_later(delay, lambda: tell_quietly(me, restart))

    def _restart_backend(self, message: _RestartBackend) -> None:
        child = self.children.get(message.name)
        if child is None or child.gave_up:
            return
        # The rebuilt actor keeps the counters and the intent, but not the session: the
        # dead actor's connections were released, so it starts from "not connected".
        old = message.lifecycle
        initial = Lifecycle(
            name=old.name,
            remote=child.spec.remote,
            attempt=old.attempt,
            consecutive_failures=old.consecutive_failures,
            transient_failures=old.transient_failures,
            last_attempt_at=old.last_attempt_at,
            last_error=old.last_error,
            tool_names=old.tool_names,
            timer_token=old.timer_token + 1,
        )
        ref = self._spawn(child.spec, child.cell, initial)
        self.children[message.name] = attrs.evolve(child, ref=ref)
        self._tell_health(ReplaceBackendRef(message.name, ref))
        if old.want_running:
            ref.tell(StartBackend())
        log.info("backend=%s actor restarted", message.name)

    def _start_health(self, states: dict[str, BackendHealthState]) -> pykka.ActorRef[Any]:
        me = self.actor_ref

        def crashed(actor: GuardedActor, error: BaseException) -> None:
            assert isinstance(actor, HealthActor)
            tell_quietly(me, _HealthCrashed(actor.actor_ref, dict(actor.states), repr(error)))

        return HealthActor.start(
            self._reporter,
            scheduler=self._scheduler,
            config=self._health_config,
            status_interval=self._status_interval,
            initial_wait=self._initial_wait,
            cell=self._status_cell,
            states=states,
            on_crash=crashed,
            on_health=self._on_health,
        )

    def _health_crashed(self, message: _HealthCrashed) -> None:
        if message.ref != self.health_ref:
            return
        log.error("health monitor crashed (%s); restarting it with its backend states", message.error)
        self.health_ref = ref = self._start_health(message.states)
        for name, child in self.children.items():
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
