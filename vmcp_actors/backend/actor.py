"""``BackendActor``: one MCP backend, as a thin shell over the pure lifecycle.

The actor owns its :class:`~vmcp_actors.backend.lifecycle_state.Lifecycle` value and the
I/O handles of its sessions, and decides nothing itself.  Every command (start, stop,
restart, config update, probe) and every I/O result arrives as a message; the actor
feeds it to :func:`~vmcp_actors.backend.lifecycle.transition` and performs the returned
effects:

* network work is submitted to the shared :class:`~vmcp_actors.actorkit.loop.LoopThread`, and its
  outcome comes back as a message, so the actor never blocks on the network and a Stop is
  handled within milliseconds even while a connect or a ping hangs;
* timers go to the :class:`~vmcp_actors.actorkit.timers.Scheduler`, which sends a message later;
* state changes are published, in order, to subscribers by ``tell`` (pykka inboxes are
  unbounded: unlike muster's buffered channels, nothing is dropped);
* after every message a fresh immutable snapshot is stored in a
  :class:`~vmcp_actors.backend.snapshot.SnapshotCell`, which readers on any thread read
  without waiting.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import time
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final, assert_never

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, Mailbox, tell_quietly
from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.connect_params import params_for
from vmcp_actors.backend.credentials_watch import CredentialsCheckDue, CredentialsWatch, credentials_fingerprint
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.io_reports import (
    CloseDone,
    ConnectDone,
    ConnectTask,
    IoReport,
    PingDone,
    SessionDropped,
    SessionWarning,
    failed_future,
    outcome_of,
    scrubbed,
)
from vmcp_actors.backend.lifecycle import transition
from vmcp_actors.backend.lifecycle_messages import (
    AdoptSession,
    AuthRequired,
    Close,
    Closed,
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    CredentialsChanged,
    DiscardSession,
    Effect,
    Input,
    LifecycleEvent,
    Now,
    Probe,
    ProbeFailed,
    ProbeRequested,
    ProbeSkipped,
    ProbeSucceeded,
    Publish,
    Reconfigure,
    Restart,
    RestartDue,
    RetryDue,
    ScheduleTimer,
    SessionLost,
    Start,
    Stop,
)
from vmcp_actors.backend.lifecycle_state import Lifecycle, LifecyclePolicy, State
from vmcp_actors.backend.messages import (
    BackendCommand,
    BackendEvent,
    ProbeBackend,
    ProbeOutcome,
    RestartBackend,
    StartBackend,
    StopBackend,
    Subscribe,
    UpdateBackend,
)
from vmcp_actors.backend.routes import (
    DEFAULT_CALL_TIMEOUT,
    BackendHooks,
    CallFailed,
    CatalogueFetched,
    ListChanged,
    RoutePublisher,
)
from vmcp_actors.backend.session import DEFAULT_CLOSE_TIMEOUT, McpConnection
from vmcp_actors.backend.snapshot import SnapshotCell, snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = ["AuthRequiredHook", "BackendActor"]

log = logging.getLogger(__name__)

AuthRequiredHook = Callable[[BackendSpec, Failure], None]


_Message = (
    BackendCommand
    | RetryDue
    | RestartDue
    | CredentialsCheckDue
    | IoReport
    | CatalogueFetched
    | ListChanged
    | CallFailed
)
_MESSAGE_TYPES: Final = typing.get_args(_Message)


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
        # A backend's own text (a JSON-RPC error, a 401 body) may echo the secrets it was sent.
        self._redactor = SecretRedactor.from_specs([spec])
        self._seq = 0
        self._connecting: dict[int, ConnectTask] = {}
        self._arrived: dict[int, McpConnection] = {}  # connected, not yet adopted or discarded
        self._connections: dict[int, McpConnection] = {}
        self._closing: set[int] = set()
        self._probe_waiters: list[tuple[Mailbox | None, int]] = []
        self._stop_waiters: list[concurrent.futures.Future[None]] = []
        self._stop_deadline: float | None = None
        self._warnings: dict[int, tuple[str, ...]] = {}
        self._credentials = CredentialsWatch()
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
        """The spec the backend runs on (the last valid one it was given)."""
        return self._spec

    @property
    def lifecycle(self) -> Lifecycle:
        """The current lifecycle value (immutable; a supervisor rebuilds from it)."""
        return self._lc

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> None:
        """Handle one message: a command, a timer coming due or an I/O report."""
        if isinstance(message, _MESSAGE_TYPES):
            self._dispatch(message)
        else:
            log.warning("%s ignored unexpected message %r", self.label, message)

    def _dispatch(self, message: _Message) -> None:
        match message:
            case StartBackend() | StopBackend() | RestartBackend() | UpdateBackend() | ProbeBackend() | Subscribe():
                self._command(message)
            case RetryDue() | RestartDue():
                self._feed(message)
            case CredentialsCheckDue():
                self._check_credentials(message)
            case ConnectDone() | CloseDone() | SessionDropped() | SessionWarning() | PingDone():
                self._io_report(message)
            case CatalogueFetched() | ListChanged():
                self._routes.handle(message, self._lc.attempt if self._lc.state.active else None)
            case CallFailed():
                if self._routes.is_live(message.attempt):  # passive health: the monitor counts it at once
                    self._subscribers = [s for s in self._subscribers if tell_quietly(s, message)]
            case _:
                assert_never(message)

    def _command(self, message: BackendCommand) -> None:
        match message:
            case StartBackend():
                self._feed(Start())
            case StopBackend():
                if message.done is not None:
                    self._stop_waiters.append(message.done)
                if message.deadline is not None:
                    self._stop_deadline = min(message.deadline, self._stop_deadline or message.deadline)
                self._feed(Stop())
            case RestartBackend():
                self._feed(Restart())
            case UpdateBackend():
                self._update(message.spec)
            case ProbeBackend():
                self._probe_waiters.append((message.reply_to, message.token))
                self._feed(ProbeRequested())
            case Subscribe():
                if message.subscriber not in self._subscribers:
                    self._subscribers.append(message.subscriber)
            case _:
                assert_never(message)

    def _io_report(self, message: IoReport) -> None:
        match message:
            case ConnectDone():
                self._connect_done(message)
            case CloseDone():
                self._feed(Closed(message.attempt))
            case SessionDropped():
                self._feed(SessionLost(message.attempt, scrubbed(message.failure, self._redactor)))
            case SessionWarning():
                self._warn(message)
            case PingDone():
                self._ping_done(message)
            case _:
                assert_never(message)

    def _feed(self, event: Input) -> None:
        clock = self._scheduler.clock
        now = Now(clock.monotonic(), clock.now(), self._rng.random())
        self._lc, effects = transition(self._lc, event, now, self._policy)
        # The snapshot goes out before the effects, so an event's subscriber who reads
        # the cell sees at least the state the event announces.
        self._refresh_snapshot()
        for effect in effects:
            self._perform(effect)
        if not self._lc.state.active:
            self._routes.withdraw()
        if self._lc.state.stopped:
            self._stop_deadline = None
        self._credentials, first_check = self._credentials.follow(
            self._lc.state is State.AUTH_REQUIRED, lambda: credentials_fingerprint(self._spec)
        )
        if first_check is not None:
            self._schedule_credentials_check(first_check)
        if self._stop_waiters and self._lc.state.stopped:
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _perform(self, effect: Effect) -> None:
        match effect:
            case Connect():
                self._connect(effect.attempt)
            case AdoptSession():
                self._adopt(effect.attempt)
            case DiscardSession():
                discarded = self._arrived.pop(effect.attempt, None)
                if discarded is not None:
                    self._close_connection(effect.attempt, discarded, report=False)
            case Close():
                self._close(effect.attempt)
            case ScheduleTimer():
                me = self.actor_ref
                message = effect.message
                self._scheduler.call_later(effect.delay, lambda: tell_quietly(me, message))
            case Probe():
                self._ping(effect.attempt, effect.timeout)
            case ProbeSkipped():
                self._reply_probe(ok=False, skipped=effect.reason)
            case AuthRequired():
                self._call_auth_hook(effect.failure)
            case Publish():
                self._publish(effect.event)
            case _:
                assert_never(effect)

    # ------------------------------------------------------------------ connect / close

    def _refresh_snapshot(self) -> None:
        self.cell.value = snapshot_of(self._spec, self._lc, self._warnings.get(self._lc.attempt, ()))

    def _warn(self, message: SessionWarning) -> None:
        """Show a warning about the current attempt's server (the connection logged it)."""
        known = self._warnings.get(message.attempt, ())
        if message.attempt < self._lc.attempt or message.text in known:
            return
        self._warnings = {message.attempt: (*known, message.text)}
        self._refresh_snapshot()

    def _connect(self, attempt: int) -> None:
        me = self.actor_ref

        def on_lost(failure: Failure) -> None:
            tell_quietly(me, SessionDropped(attempt, failure))

        def on_warning(text: str) -> None:
            tell_quietly(me, SessionWarning(attempt, text))

        task = ConnectTask()
        callbacks = self._routes.events(attempt).callbacks()
        try:
            future = self._io.submit(task.run(params_for(self._spec), on_lost, on_warning, callbacks))
        except BackendError as exc:
            future = failed_future(exc)
        except LoopThreadStoppedError as exc:
            future = failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        task.future = future
        self._connecting[attempt] = task
        future.add_done_callback(lambda done: tell_quietly(me, ConnectDone(attempt, done)))

    def _connect_done(self, message: ConnectDone) -> None:
        attempt = message.attempt
        self._connecting.pop(attempt, None)
        connection, failure = outcome_of(message.future, self._redactor)
        if attempt in self._closing:
            # A Close came while connecting: this outcome finishes it.
            self._closing.discard(attempt)
            if connection is not None:
                self._close_connection(attempt, connection)
            else:
                tell_quietly(self.actor_ref, CloseDone(attempt))
            return
        if connection is None:
            assert failure is not None
            self._feed(ConnectFailed(attempt, failure))
            return
        self._arrived[attempt] = connection
        self._feed(ConnectSucceeded(attempt, connection.tool_names, connection.protocol_version))

    def _adopt(self, attempt: int) -> None:
        connection = self._arrived.pop(attempt)
        self._connections[attempt] = connection
        self._routes.opened(attempt, connection)
        log.info("%s %s with %d tools", self.label, self._lc.state.value, len(connection.tool_names))

    def _close(self, attempt: int) -> None:
        connection = self._connections.pop(attempt, None)
        if connection is not None:
            self._close_connection(attempt, connection)
            return
        task = self._connecting.get(attempt)
        if task is not None:
            # The connect's outcome arrives as ConnectDone and finishes the close: after
            # the cancelled connect has cleaned up what it started (the process, the HTTP
            # client), or with a session to close if it had already succeeded.
            self._closing.add(attempt)
            if not task.done():
                task.cancel(self._io)
            return
        tell_quietly(self.actor_ref, CloseDone(attempt))

    def _close_connection(self, attempt: int, connection: McpConnection, *, report: bool = True) -> None:
        me = self.actor_ref
        timeout = DEFAULT_CLOSE_TIMEOUT
        if self._stop_deadline is not None:
            timeout = min(timeout, max(self._stop_deadline - time.monotonic(), 0.0))
        try:
            future = self._io.submit(connection.close(timeout))
        except LoopThreadStoppedError:
            if report:
                tell_quietly(me, CloseDone(attempt))
            return
        if report:
            future.add_done_callback(lambda _: tell_quietly(me, CloseDone(attempt)))

    # ------------------------------------------------------------------ probes

    def _ping(self, attempt: int, timeout: float) -> None:
        me = self.actor_ref
        connection = self._connections.get(attempt)
        if connection is None:
            failure = Failure(FailureKind.SESSION_LOST, "no open session to probe")
            tell_quietly(me, PingDone(attempt, failed_future(BackendError(failure))))
            return
        try:
            future = self._io.submit(connection.ping(timeout))
        except LoopThreadStoppedError as exc:
            future = failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        future.add_done_callback(lambda done: tell_quietly(me, PingDone(attempt, done)))

    def _ping_done(self, message: PingDone) -> None:
        latency, failure = outcome_of(message.future, self._redactor)
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
        self._redactor.add(new)
        reconfigure = Reconfigure.between(old, new)
        if reconfigure.changed:
            log.info("%s: configuration changed", self.label)
        self._feed(reconfigure)

    def _check_credentials(self, due: CredentialsCheckDue) -> None:
        """An auth-required backend retries as soon as its token differs from the one rejected."""
        changed, again = self._credentials.check(due, lambda: credentials_fingerprint(self._spec))
        if changed:
            log.info("%s: credentials changed; reconnecting", self.label)
            self._feed(CredentialsChanged())
        elif again is not None:
            self._schedule_credentials_check(again)

    def _schedule_credentials_check(self, due: CredentialsCheckDue) -> None:
        me = self.actor_ref
        self._scheduler.call_later(self._policy.credentials_poll, lambda: tell_quietly(me, due))

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
        for connection in (*self._arrived.values(), *self._connections.values()):
            try:
                pending.append(self._io.submit(connection.close()))
            except LoopThreadStoppedError:
                break
        self._connecting.clear()
        self._arrived.clear()
        self._connections.clear()
        return pending
