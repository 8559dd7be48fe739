"""The backend actor's I/O plumbing: in-flight connects and the reports I/O sends back.

The backend actor hands network work to the :class:`~vmcp_actors.actorkit.loop.LoopThread`
and gets ``concurrent.futures.Future`` objects back.  When one finishes, a report
(:data:`IoReport`) is told to the actor, which turns it into a lifecycle input with
:func:`outcome_of` (a result or a classified :class:`~vmcp_actors.backend.failures.Failure`).
:class:`ConnectTask` makes a connect cancellable the right way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

import attrs

from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.backend.classify import classify
from vmcp_actors.backend.client_callbacks import ClientCallbacks
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.session import McpConnection, connect
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = [
    "CloseDone",
    "ConnectDone",
    "ConnectTask",
    "IoReport",
    "PingDone",
    "SessionDropped",
    "SessionWarning",
    "failed_future",
    "outcome_of",
]


@attrs.frozen
class ConnectDone:
    """The connect of ``attempt`` finished (``future`` holds the connection or the error)."""

    attempt: int
    future: concurrent.futures.Future[McpConnection] = attrs.field(eq=False)


@attrs.frozen
class CloseDone:
    """Everything of ``attempt`` is closed."""

    attempt: int


@attrs.frozen
class SessionDropped:
    """The open session of ``attempt`` died on its own."""

    attempt: int
    failure: Failure


@attrs.frozen
class SessionWarning:
    """The server of ``attempt`` does something wrong that does not fail it (``text`` says what)."""

    attempt: int
    text: str


@attrs.frozen
class PingDone:
    """The ping on the session of ``attempt`` finished (``future`` holds the latency or the error)."""

    attempt: int
    future: concurrent.futures.Future[float] = attrs.field(eq=False)


IoReport = ConnectDone | CloseDone | SessionDropped | SessionWarning | PingDone


class ConnectTask:
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
        self,
        params: ConnectParams,
        on_lost: Callable[[Failure], None],
        on_warning: Callable[[str], None],
        callbacks: ClientCallbacks | None = None,
    ) -> McpConnection:
        """The coroutine to submit to the loop: :func:`~vmcp_actors.backend.session.connect`."""
        self._task = asyncio.current_task()
        return await connect(params, on_lost=on_lost, on_warning=on_warning, callbacks=callbacks)

    def done(self) -> bool:
        """Whether the connect has finished (its outcome is on its way to the actor)."""
        return self.future is not None and self.future.done()

    def cancel(self, io: LoopThread) -> None:
        """Cancel the connect on the loop; its future resolves once it has cleaned up."""
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


def failed_future(error: BaseException) -> concurrent.futures.Future[Any]:
    """A future that has already failed with ``error``: I/O that could not even start."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_exception(error)
    return future


def outcome_of(future: concurrent.futures.Future[Any], redactor: SecretRedactor) -> tuple[Any, Failure | None]:
    """The result of finished I/O, or its classified failure with the backend's secrets scrubbed."""
    if future.cancelled():
        return None, Failure(FailureKind.TRANSIENT, "the operation was cancelled")
    error = future.exception()
    if error is None:
        return future.result(), None
    if isinstance(error, BackendError):
        return None, scrubbed(error.failure, redactor)
    return None, scrubbed(classify(error), redactor)


def scrubbed(failure: Failure, redactor: SecretRedactor) -> Failure:
    """``failure`` with the configured secrets scrubbed from its message, which may quote the server."""
    message = redactor.scrub(failure.message)
    return failure if message == failure.message else attrs.evolve(failure, message=message)
