"""``BackendActor``: one MCP backend, as a thin shell over the pure lifecycle.

The actor owns its :class:`~vmcp_actors.backend.lifecycle.Lifecycle` value and nothing else of
consequence.  Every command (start, stop, restart, config update, probe) and every I/O
result arrives as a message; the actor feeds it to
:func:`~vmcp_actors.backend.lifecycle.transition` and performs the returned effects:

* network work is submitted to the shared :class:`~vmcp_actors.actorkit.loop.LoopThread`, and its
  outcome comes back as a message, so the actor never blocks on the network and a Stop is
  handled within milliseconds even while a connect or a ping hangs;
* timers go to the :class:`~vmcp_actors.actorkit.timers.Scheduler`, which sends a message later;
* state changes are published, in order, to subscribers by ``tell`` (pykka inboxes are
  unbounded: unlike muster's buffered channels, nothing is dropped);
* after every message a fresh immutable :class:`BackendSnapshot` is stored in a
  :class:`SnapshotCell`, which readers on any thread read without waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import attrs

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, Mailbox, tell_quietly
from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind, classify
from vmcp_actors.backend.lifecycle import (
    AuthRequired,
    Close,
    Closed,
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    Effect,
    Health,
    Input,
    Lifecycle,
    LifecycleEvent,
    LifecyclePolicy,
    Now,
    Probe,
    ProbeFailed,
    ProbeRequested,
    ProbeSkipped,
    ProbeSucceeded,
    Publish,
    Restart,
    RestartDue,
    RetryDue,
    ScheduleTimer,
    SessionLost,
    Start,
    State,
    Stop,
    transition,
)
from vmcp_actors.backend.routes import (
    DEFAULT_CALL_TIMEOUT,
    BackendHooks,
    CallFailed,
    CatalogueFetched,
    ListChanged,
    RoutePublisher,
)
from vmcp_actors.backend.session import ClientCallbacks, ConnectParams, McpConnection, connect
from vmcp_actors.config.spec import BackendSpec
from vmcp_actors.errors import ValidationError

__all__ = [
    "AuthRequiredHook",
    "BackendActor",
    "BackendEvent",
    "BackendSnapshot",
    "ProbeBackend",
    "ProbeOutcome",
    "RestartBackend",
    "SnapshotCell",
    "StartBackend",
    "StopBackend",
    "Subscribe",
    "Unsubscribe",
    "UpdateBackend",
    "snapshot_of",
]

log = logging.getLogger(__name__)

AuthRequiredHook = Callable[[BackendSpec, Failure], None]


# --------------------------------------------------------------------------- snapshot


@attrs.frozen
class BackendSnapshot:
    """What muster's getters answer, as one immutable value (secrets redacted)."""

    name: str
    transport: str
    url: str
    state: State
    health: Health
    consecutive_failures: int
    last_attempt: datetime | None
    next_retry_after: datetime | None
    unreachable: bool
    client_ready: bool
    running: bool
    tool_count: int
    tool_names: tuple[str, ...]
    last_error: str
    last_error_kind: str
    http_status: int | None
    last_probe_latency: float | None
    has_outgoing_auth: bool
    attempt: int
    service_data: dict[str, Any] = attrs.field(eq=False)


def snapshot_of(spec: BackendSpec, lc: Lifecycle) -> BackendSnapshot:
    error = lc.last_error
    return BackendSnapshot(
        name=spec.name,
        transport=str(spec.type),
        url=spec.url or "",
        state=lc.state,
        health=lc.health,
        consecutive_failures=lc.consecutive_failures,
        last_attempt=lc.last_attempt_at,
        next_retry_after=lc.next_retry_wall,
        unreachable=lc.unreachable,
        client_ready=lc.client_ready,
        running=lc.state.active,
        tool_count=len(lc.tool_names),
        tool_names=lc.tool_names,
        last_error=error.message if error else "",
        last_error_kind=error.kind.value if error else "",
        http_status=error.http_status if error else None,
        last_probe_latency=lc.last_probe_latency,
        has_outgoing_auth=spec.auth.configured,
        attempt=lc.attempt,
        service_data=spec.redacted(),
    )


class SnapshotCell:
    """Holds the latest snapshot of one backend: written by its actor, read by anyone.

    A single reference assignment is atomic, so readers never see a half-built value and
    never wait for the actor, even while it is busy.
    """

    __slots__ = ("value",)

    def __init__(self, value: BackendSnapshot) -> None:
        self.value = value


# --------------------------------------------------------------------------- messages


@attrs.frozen
class StartBackend:
    """Connect (a no-op while connecting or connected)."""


@attrs.frozen
class StopBackend:
    """Stop; ``done`` (if given) resolves once the backend has reached a stopped state."""

    done: concurrent.futures.Future[None] | None = attrs.field(default=None, eq=False)


@attrs.frozen
class RestartBackend:
    """Stop, wait the grace period, start again."""


@attrs.frozen
class UpdateBackend:
    """Swap the spec; restart only if muster's ``config_changed`` says so."""

    spec: BackendSpec


@attrs.frozen
class ProbeBackend:
    """Ping the backend; the outcome is told to ``reply_to`` (a ProbeOutcome)."""

    reply_to: Mailbox | None = attrs.field(default=None, eq=False)
    token: int = 0


@attrs.frozen
class Subscribe:
    subscriber: Mailbox = attrs.field(eq=False)


@attrs.frozen
class Unsubscribe:
    subscriber: Mailbox = attrs.field(eq=False)


@attrs.frozen
class BackendEvent:
    """A published state or health change; ``seq`` increases by one per backend."""

    name: str
    seq: int
    change: LifecycleEvent
    snapshot: BackendSnapshot


@attrs.frozen
class ProbeOutcome:
    name: str
    token: int
    ok: bool
    latency: float | None = None
    failure: Failure | None = None
    skipped: str = ""


@attrs.frozen
class _ConnectDone:
    attempt: int
    future: concurrent.futures.Future[McpConnection] = attrs.field(eq=False)


@attrs.frozen
class _CloseDone:
    attempt: int


@attrs.frozen
class _Lost:
    attempt: int
    failure: Failure


@attrs.frozen
class _PingDone:
    attempt: int
    future: concurrent.futures.Future[float] = attrs.field(eq=False)


# --------------------------------------------------------------------------- the actor


class BackendActor(GuardedActor):
    """One MCP backend.  Create with :meth:`start`; talk to it only with messages."""

    def __init__(
        self,
        spec: BackendSpec,
        *,
        io: LoopThread,
        scheduler: Scheduler,
        cell: SnapshotCell | None = None,
        policy: LifecyclePolicy | None = None,
        subscribers: Iterable[Mailbox] = (),
        on_auth_required: AuthRequiredHook | None = None,
        on_crash: CrashHandler | None = None,
        rng: random.Random | None = None,
        initial: Lifecycle | None = None,
        hooks: BackendHooks | None = None,
    ) -> None:
        super().__init__(f"backend {spec.name!r}", on_crash)
        self._spec = spec
        self._io = io
        self._scheduler = scheduler
        self._policy = policy or LifecyclePolicy()
        self._subscribers: list[Mailbox] = list(subscribers)
        self._on_auth_required = on_auth_required
        self._rng = rng or random.Random()
        self._lc = initial or Lifecycle(name=spec.name, remote=spec.remote)
        self._seq = 0
        self._connecting: dict[int, _ConnectTask] = {}
        self._connections: dict[int, McpConnection] = {}
        self._closing: set[int] = set()
        self._probe_waiters: list[tuple[Mailbox | None, int]] = []
        self._stop_waiters: list[concurrent.futures.Future[None]] = []
        self.cell = cell or SnapshotCell(snapshot_of(spec, self._lc))
        self.cell.value = snapshot_of(spec, self._lc)
        # The data plane's view of this backend: its live session, catalogue, call failures.
        self._routes = RoutePublisher(
            spec.name, hooks, io, lambda message: tell_quietly(self.actor_ref, message), self._call_timeout
        )

    def _call_timeout(self) -> float:
        return self._spec.timeout or DEFAULT_CALL_TIMEOUT

    @property
    def spec(self) -> BackendSpec:
        return self._spec

    @property
    def lifecycle(self) -> Lifecycle:
        """The current lifecycle value (immutable; a supervisor rebuilds from it)."""
        return self._lc

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> Any:
        if isinstance(message, StartBackend):
            self._feed(Start())
        elif isinstance(message, StopBackend):
            if message.done is not None:
                self._stop_waiters.append(message.done)
            self._feed(Stop())
        elif isinstance(message, RestartBackend):
            self._feed(Restart())
        elif isinstance(message, UpdateBackend):
            self._update(message.spec)
        elif isinstance(message, ProbeBackend):
            self._probe(message)
        elif isinstance(message, (RetryDue, RestartDue)):
            self._feed(message)
        elif isinstance(message, _ConnectDone):
            self._connect_done(message)
        elif isinstance(message, _CloseDone):
            self._feed(Closed(message.attempt))
        elif isinstance(message, _Lost):
            self._feed(SessionLost(message.attempt, message.failure))
        elif isinstance(message, _PingDone):
            self._ping_done(message)
        elif isinstance(message, (CatalogueFetched, ListChanged)):
            self._routes.handle(message, self._lc.attempt if self._lc.state.active else None)
        elif isinstance(message, CallFailed):
            if self._routes.is_live(message.attempt):  # passive health: the monitor counts it at once
                self._subscribers = [s for s in self._subscribers if tell_quietly(s, message)]
        elif isinstance(message, Subscribe):
            if message.subscriber not in self._subscribers:
                self._subscribers.append(message.subscriber)
        elif isinstance(message, Unsubscribe):
            self._subscribers = [s for s in self._subscribers if s is not message.subscriber]
        else:
            log.warning("%s ignored unexpected message %r", self.label, message)
        return None

    def _feed(self, event: Input) -> None:
        clock = self._scheduler.clock
        now = Now(clock.monotonic(), clock.now(), self._rng.random())
        self._lc, effects = transition(self._lc, event, now, self._policy)
        # The snapshot goes out before the effects, so an event's subscriber who reads
        # the cell sees at least the state the event announces.
        self.cell.value = snapshot_of(self._spec, self._lc)
        for effect in effects:
            self._perform(effect)
        if not self._lc.state.active:
            self._routes.withdraw()
        if self._stop_waiters and self._lc.state.stopped:
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _perform(self, effect: Effect) -> None:
        if isinstance(effect, Connect):
            self._connect(effect.attempt)
        elif isinstance(effect, Close):
            self._close(effect.attempt)
        elif isinstance(effect, ScheduleTimer):
            me = self.actor_ref
            message = effect.message
            self._scheduler.call_later(effect.delay, lambda: tell_quietly(me, message))
        elif isinstance(effect, Probe):
            self._ping(effect.attempt, effect.timeout)
        elif isinstance(effect, ProbeSkipped):
            self._reply_probe(ok=False, skipped=effect.reason)
        elif isinstance(effect, AuthRequired):
            self._call_auth_hook(effect.failure)
        elif isinstance(effect, Publish):
            self._publish(effect.event)

    # ------------------------------------------------------------------ connect / close

    def _connect_params(self) -> ConnectParams:
        spec = self._spec
        headers = dict(spec.headers)
        token = spec.auth.resolve_token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return ConnectParams(
            name=spec.name,
            transport=spec.type.value,
            command=spec.command,
            args=spec.args,
            env=spec.env,
            cwd=spec.cwd,
            url=spec.url,
            headers=tuple(headers.items()),
            connect_timeout=spec.connect_timeout,
        )

    def _connect(self, attempt: int) -> None:
        me = self.actor_ref
        try:
            params = self._connect_params()
        except (ValidationError, ValueError) as exc:
            failure = Failure(FailureKind.CONFIGURATION, str(exc))
            tell_quietly(me, _ConnectDone(attempt, _failed_future(BackendError(failure))))
            return

        def on_lost(failure: Failure) -> None:
            tell_quietly(me, _Lost(attempt, failure))

        task = _ConnectTask()
        callbacks = self._routes.events(attempt).callbacks()
        try:
            future = self._io.submit(task.run(params, on_lost, callbacks))
        except LoopThreadStoppedError as exc:
            future = _failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        task.future = future
        self._connecting[attempt] = task
        future.add_done_callback(lambda done: tell_quietly(me, _ConnectDone(attempt, done)))

    def _connect_done(self, message: _ConnectDone) -> None:
        attempt = message.attempt
        self._connecting.pop(attempt, None)
        connection, failure = _outcome(message.future)
        if attempt in self._closing:
            self._closing.discard(attempt)
            if connection is not None:
                self._close_connection(attempt, connection)
            else:
                tell_quietly(self.actor_ref, _CloseDone(attempt))
            return
        if connection is not None:
            self._feed(ConnectSucceeded(attempt, connection.tool_names))
            if self._lc.attempt == attempt and self._lc.state.active:
                self._connections[attempt] = connection
                self._routes.opened(attempt, connection)
                log.info("%s %s with %d tools", self.label, self._lc.state.value, len(connection.tool_names))
            else:
                self._close_connection(attempt, connection, report=False)  # overtaken: discard
            return
        assert failure is not None
        self._feed(ConnectFailed(attempt, failure))

    def _close(self, attempt: int) -> None:
        connection = self._connections.pop(attempt, None)
        if connection is not None:
            self._close_connection(attempt, connection)
            return
        task = self._connecting.get(attempt)
        if task is not None and not task.done():
            # Cancelling the connect makes it clean up what it started (the process, the
            # HTTP client); its outcome arrives as _ConnectDone only once that is over,
            # and that finishes the close.
            self._closing.add(attempt)
            task.cancel(self._io)
            return
        tell_quietly(self.actor_ref, _CloseDone(attempt))

    def _close_connection(self, attempt: int, connection: McpConnection, *, report: bool = True) -> None:
        me = self.actor_ref
        try:
            future = self._io.submit(connection.close())
        except LoopThreadStoppedError:
            if report:
                tell_quietly(me, _CloseDone(attempt))
            return
        if report:
            future.add_done_callback(lambda _: tell_quietly(me, _CloseDone(attempt)))

    # ------------------------------------------------------------------ probes

    def _probe(self, message: ProbeBackend) -> None:
        self._probe_waiters.append((message.reply_to, message.token))
        if self._lc.probe_in_flight:
            return  # joins the probe already running: probes never overlap
        self._feed(ProbeRequested())

    def _ping(self, attempt: int, timeout: float) -> None:
        me = self.actor_ref
        connection = self._connections.get(attempt)
        if connection is None:
            failure = Failure(FailureKind.SESSION_LOST, "no open session to probe")
            tell_quietly(me, _PingDone(attempt, _failed_future(BackendError(failure))))
            return
        try:
            future = self._io.submit(connection.ping(timeout))
        except LoopThreadStoppedError as exc:
            future = _failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        future.add_done_callback(lambda done: tell_quietly(me, _PingDone(attempt, done)))

    def _ping_done(self, message: _PingDone) -> None:
        latency, failure = _outcome(message.future)
        if failure is None and latency is not None:
            self._feed(ProbeSucceeded(message.attempt, latency))
            self._reply_probe(ok=True, latency=latency)
        else:
            assert failure is not None
            self._feed(ProbeFailed(message.attempt, failure))
            self._reply_probe(ok=False, failure=failure)

    def _reply_probe(
        self, *, ok: bool, latency: float | None = None, failure: Failure | None = None, skipped: str = ""
    ) -> None:
        waiters, self._probe_waiters = self._probe_waiters, []
        for reply_to, token in waiters:
            if reply_to is not None:
                outcome = ProbeOutcome(self._spec.name, token, ok, latency, failure, skipped)
                tell_quietly(reply_to, outcome)

    # ------------------------------------------------------------------ config, hooks, events

    def _update(self, new: BackendSpec) -> None:
        problems = new.problems()
        if problems:
            # Bad input loses nothing: the backend keeps running on its previous spec.
            log.error("%s: config update rejected, keeping the previous spec: %s", self.label, problems[0])
            return
        old, self._spec = self._spec, new
        if not old.config_changed(new):
            self.cell.value = snapshot_of(new, self._lc)
            return
        log.info("%s: configuration changed; restarting", self.label)
        self._lc = attrs.evolve(self._lc, remote=new.remote)
        if self._lc.state.active or self._lc.state in (State.STARTING, State.STOPPING):
            self._feed(Restart())
        elif new.auto_start and not old.auto_start:
            self._feed(Start())
        else:
            self.cell.value = snapshot_of(new, self._lc)

    def _call_auth_hook(self, failure: Failure) -> None:
        if self._on_auth_required is None:
            return
        try:
            self._on_auth_required(self._spec, failure)
        except Exception:
            log.exception("%s: auth-required hook failed", self.label)

    def _publish(self, change: LifecycleEvent) -> None:
        self._seq += 1
        level = logging.WARNING if change.new_state in (State.FAILED, State.UNREACHABLE) else logging.INFO
        log.log(
            level,
            "backend=%s state=%s health=%s%s",
            change.name,
            change.new_state.value,
            change.health.value,
            f" error={change.error!r}" if change.error else "",
        )
        event = BackendEvent(self._spec.name, self._seq, change, self.cell.value)
        self._subscribers = [s for s in self._subscribers if tell_quietly(s, event)]

    # ------------------------------------------------------------------ teardown

    def on_stop(self) -> None:
        """Last resort: release whatever is still open; a clean shutdown stops first."""
        self.release()

    def release(self) -> list[concurrent.futures.Future[Any]]:
        """Cancel connects and close sessions without waiting (also used after a crash).

        Returns the futures of that cleanup, so whoever shuts the loop down (the
        supervisor, after a crash) can let it finish first: a process whose close is
        cut short by the loop closing is left half-closed.
        """
        pending: list[concurrent.futures.Future[Any]] = []
        self._routes.withdraw()
        for task in self._connecting.values():
            task.cancel(self._io)
            if task.future is not None:
                pending.append(task.future)
        for connection in self._connections.values():
            try:
                pending.append(self._io.submit(connection.close()))
            except LoopThreadStoppedError:
                break
        self._connecting.clear()
        self._connections.clear()
        return pending


class _ConnectTask:
    """One in-flight connect, cancellable so that its cleanup completes first.

    Cancelling the ``concurrent.futures.Future`` of a coroutine resolves that future at
    once, while the asyncio task is still unwinding (killing the process, closing the
    client).  Cancelling the task itself, on the loop, lets the outcome arrive only when
    the unwinding is done, so a Stop never reports "stopped" over a half-closed session.
    """

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[McpConnection] | None = None
        self._task: asyncio.Task[McpConnection] | None = None

    async def run(
        self, params: ConnectParams, on_lost: Callable[[Failure], None], callbacks: ClientCallbacks | None = None
    ) -> McpConnection:
        self._task = asyncio.current_task()
        return await connect(params, on_lost=on_lost, callbacks=callbacks)

    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def cancel(self, io: LoopThread) -> None:
        try:
            io.call_soon(self._cancel_on_loop)
        except LoopThreadStoppedError:
            if self.future is not None:
                self.future.cancel()

    def _cancel_on_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        elif self.future is not None:
            self.future.cancel()  # not started yet: nothing to unwind


def _failed_future(error: BaseException) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_exception(error)
    return future


def _outcome(future: concurrent.futures.Future[Any]) -> tuple[Any, Failure | None]:
    """The result of finished I/O, or its classified failure."""
    if future.cancelled():
        return None, Failure(FailureKind.TRANSIENT, "the operation was cancelled")
    error = future.exception()
    if error is None:
        return future.result(), None
    if isinstance(error, BackendError):
        return None, error.failure
    return None, classify(error)
