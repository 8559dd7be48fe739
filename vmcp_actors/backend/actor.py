"""``BackendActor``: one MCP backend, as a thin shell over the pure lifecycle.

The actor owns its :class:`~vmcp_actors.backend.lifecycle_state.Lifecycle` value and the
I/O handles of its sessions (:mod:`~vmcp_actors.backend.session_handles`), and decides
nothing itself.  Every command (start, stop, restart, config update, probe) and every
I/O result arrives as a message; the actor feeds it to
:func:`~vmcp_actors.backend.lifecycle.transition` and performs the returned effects:

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
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final, assert_never

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, Mailbox, tell_quietly
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.credentials_poll import CredentialsPoller
from vmcp_actors.backend.credentials_watch import CredentialsCheckDue
from vmcp_actors.backend.failures import Failure
from vmcp_actors.backend.io_reports import (
    CloseDone,
    ConnectDone,
    IoReport,
    PingDone,
    SessionDropped,
    SessionWarning,
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
from vmcp_actors.backend.session_handles import SessionHandles
from vmcp_actors.backend.snapshot import SnapshotCell, snapshot_of
from vmcp_actors.backend.waiters import ProbeWaiters, StopWaiters
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
        self._probes = ProbeWaiters()
        self._stops = StopWaiters()
        self._sessions = SessionHandles(io, self._tell_self, self._stops.close_timeout)
        self._warnings: dict[int, tuple[str, ...]] = {}
        self._credentials = CredentialsPoller(
            lambda: self._spec, scheduler, self._policy.credentials_poll, self._tell_self
        )
        self.cell = cell or SnapshotCell(snapshot_of(spec, self._lc))
        self.cell.value = snapshot_of(spec, self._lc)
        # The data plane's view of this backend: its live session, catalogue, call failures.
        self._routes = RoutePublisher(spec.name, hooks, io, self._tell_self, self._call_timeout, self._redactor)

    def _tell_self(self, message: object) -> bool:
        return tell_quietly(self.actor_ref, message)

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
                self._stops.add(message)
                self._feed(Stop())
            case RestartBackend():
                self._feed(Restart())
            case UpdateBackend():
                self._update(message.spec)
            case ProbeBackend():
                self._probes.add(message.reply_to, message.token)
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
        self._credentials.follow(self._lc.state is State.AUTH_REQUIRED)
        self._stops.settle(self._lc.state.stopped)

    def _perform(self, effect: Effect) -> None:
        match effect:
            case Connect():
                callbacks = self._routes.events(effect.attempt).callbacks()
                self._sessions.connect(effect.attempt, self._spec, callbacks)
            case AdoptSession():
                self._adopt(effect.attempt)
            case DiscardSession():
                self._sessions.discard(effect.attempt)
            case Close():
                self._sessions.close(effect.attempt)
            case ScheduleTimer():
                me = self.actor_ref
                message = effect.message
                self._scheduler.call_later(effect.delay, lambda: tell_quietly(me, message))
            case Probe():
                self._sessions.ping(effect.attempt, effect.timeout)
            case ProbeSkipped():
                self._probes.reply(self._spec.name, ok=False, skipped=effect.reason)
            case AuthRequired():
                self._call_auth_hook(effect.failure)
            case Publish():
                self._publish(effect.event)
            case _:
                assert_never(effect)

    # ------------------------------------------------------------------ snapshot, connect

    def _refresh_snapshot(self) -> None:
        self.cell.value = snapshot_of(self._spec, self._lc, self._warnings.get(self._lc.attempt, ()))

    def _warn(self, message: SessionWarning) -> None:
        """Show a warning about the current attempt's server (the connection logged it)."""
        known = self._warnings.get(message.attempt, ())
        if message.attempt < self._lc.attempt or message.text in known:
            return
        self._warnings = {message.attempt: (*known, message.text)}
        self._refresh_snapshot()

    def _connect_done(self, message: ConnectDone) -> None:
        outcome = self._sessions.connect_done(message, self._redactor)
        if outcome is None:
            return  # it finished a Close that came while connecting
        connection, failure = outcome
        if connection is None:
            assert failure is not None
            self._feed(ConnectFailed(message.attempt, failure))
            return
        self._feed(ConnectSucceeded(message.attempt, connection.tool_names, connection.protocol_version))

    def _adopt(self, attempt: int) -> None:
        connection = self._sessions.adopt(attempt)
        self._routes.opened(attempt, connection)
        log.info("%s %s with %d tools", self.label, self._lc.state.value, len(connection.tool_names))

    # ------------------------------------------------------------------ probes

    def _ping_done(self, message: PingDone) -> None:
        latency, failure = outcome_of(message.future, self._redactor)
        if failure is None and latency is not None:
            self._feed(ProbeSucceeded(message.attempt, latency))
            self._probes.reply(self._spec.name, ok=True, latency=latency)
        else:
            assert failure is not None
            self._feed(ProbeFailed(message.attempt, failure))
            self._probes.reply(self._spec.name, ok=False, failure=failure)

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
        if self._credentials.changed(due):
            log.info("%s: credentials changed; reconnecting", self.label)
            self._feed(CredentialsChanged())

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
        self._routes.withdraw()
        return self._sessions.release()
