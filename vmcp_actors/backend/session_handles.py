"""The I/O handles behind a backend's attempt numbers: connects in flight, sessions, closes.

The pure lifecycle names a session only by its attempt number; the actor must find the
real thing behind that number when an effect says connect, adopt, discard, close or
probe it.  :class:`SessionHandles` keeps that map, so that each attempt's session is
closed exactly once whatever order things happen in: a Close that arrives while the
connect is still running cancels it and lets the connect's outcome finish the close (with
a session to close if it had succeeded meanwhile), and after a crash :meth:`release`
finds everything still open.

It runs on the actor's thread; the network work goes to the
:class:`~vmcp_actors.actorkit.loop.LoopThread`, and every outcome comes back to the actor as
an :data:`~vmcp_actors.backend.io_reports.IoReport` message through ``tell``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.backend.client_callbacks import ClientCallbacks
from vmcp_actors.backend.connect_params import params_for
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.io_reports import (
    CloseDone,
    ConnectDone,
    ConnectTask,
    PingDone,
    SessionDropped,
    SessionWarning,
    failed_future,
    outcome_of,
)
from vmcp_actors.backend.session import McpConnection
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = ["SessionHandles"]


class SessionHandles:
    """One backend's connects, sessions and closes, by attempt; used on the actor's thread only.

    ``tell`` sends a report to the actor; ``close_timeout`` says how long a close may take
    now (a stop with a deadline shortens it).
    """

    def __init__(self, io: LoopThread, tell: Callable[[object], bool], close_timeout: Callable[[], float]) -> None:
        self._io = io
        self._tell = tell
        self._close_timeout = close_timeout
        self._connecting: dict[int, ConnectTask] = {}
        self._arrived: dict[int, McpConnection] = {}  # connected, not yet adopted or discarded
        self._connections: dict[int, McpConnection] = {}
        self._closing: set[int] = set()

    def connect(self, attempt: int, spec: BackendSpec, callbacks: ClientCallbacks) -> None:
        """Start connecting ``attempt`` to ``spec``; the outcome comes back as :class:`ConnectDone`.

        A spec whose parameters cannot be built (a token that cannot be read) fails the
        connect the same way, through its outcome.
        """
        tell = self._tell

        def on_lost(failure: Failure) -> None:
            tell(SessionDropped(attempt, failure))

        def on_warning(text: str) -> None:
            tell(SessionWarning(attempt, text))

        task = ConnectTask()
        try:
            future = self._io.submit(task.run(params_for(spec), on_lost, on_warning, callbacks))
        except BackendError as exc:
            future = failed_future(exc)
        except LoopThreadStoppedError as exc:
            future = failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        task.future = future
        self._connecting[attempt] = task
        future.add_done_callback(lambda done: tell(ConnectDone(attempt, done)))

    def connect_done(
        self, message: ConnectDone, redactor: SecretRedactor
    ) -> tuple[McpConnection | None, Failure | None] | None:
        """Take a connect's outcome: the session (kept until adopted or discarded) or the failure.

        ``None`` when a Close came while connecting: this outcome finishes that close
        (its :class:`CloseDone` follows), and the lifecycle hears nothing else of it.
        """
        attempt = message.attempt
        self._connecting.pop(attempt, None)
        connection, failure = outcome_of(message.future, redactor)
        if attempt in self._closing:
            self._closing.discard(attempt)
            if connection is not None:
                self._close_connection(attempt, connection)
            else:
                self._tell(CloseDone(attempt))
            return None
        if connection is not None:
            self._arrived[attempt] = connection
        return connection, failure

    def adopt(self, attempt: int) -> McpConnection:
        """Make the arrived session of ``attempt`` the open one."""
        connection = self._arrived.pop(attempt)
        self._connections[attempt] = connection
        return connection

    def discard(self, attempt: int) -> None:
        """Close an arrived session the lifecycle does not want (no :class:`CloseDone` follows)."""
        discarded = self._arrived.pop(attempt, None)
        if discarded is not None:
            self._close_connection(attempt, discarded, report=False)

    def close(self, attempt: int) -> None:
        """Close whatever ``attempt`` has open or is opening; :class:`CloseDone` follows."""
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
        self._tell(CloseDone(attempt))

    def _close_connection(self, attempt: int, connection: McpConnection, *, report: bool = True) -> None:
        tell = self._tell
        try:
            future = self._io.submit(connection.close(self._close_timeout()))
        except LoopThreadStoppedError:
            if report:
                tell(CloseDone(attempt))
            return
        if report:
            future.add_done_callback(lambda _: tell(CloseDone(attempt)))

    def ping(self, attempt: int, timeout: float) -> None:
        """Ping the open session of ``attempt``; the outcome comes back as :class:`PingDone`."""
        tell = self._tell
        connection = self._connections.get(attempt)
        if connection is None:
            failure = Failure(FailureKind.SESSION_LOST, "no open session to probe")
            tell(PingDone(attempt, failed_future(BackendError(failure))))
            return
        try:
            future = self._io.submit(connection.ping(timeout))
        except LoopThreadStoppedError as exc:
            future = failed_future(BackendError(Failure(FailureKind.TRANSIENT, f"I/O loop is not running: {exc}")))
        future.add_done_callback(lambda done: tell(PingDone(attempt, done)))

    def release(self) -> list[concurrent.futures.Future[Any]]:
        """Cancel connects and close sessions without waiting; the futures of that cleanup."""
        pending: list[concurrent.futures.Future[Any]] = []
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
