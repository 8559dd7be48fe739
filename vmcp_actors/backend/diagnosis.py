"""Why a connection failed: the one verdict that the transport's many signals add up to.

A dying connection is reported from several places at once, each seeing only part of
it: the HTTP watchers see a status the SDK swallows, the read stream sees the transport's
own exception, a stdio server's process exits, a request just raises "connection
closed".  :class:`Diagnosis` turns those signals into the :class:`Failure` the connection
reports (through its :class:`~vmcp_actors.backend.lifeline.Lifeline`, where the first
cause wins), and tells a failed request which failure is really its own: an HTTP error
status since the request was sent, the server's own JSON-RPC error, or the transport
being gone (then it waits briefly for the owner task to learn why).
"""

from __future__ import annotations

import logging
import time

import anyio
import attrs

from vmcp_actors.backend.attribution import Attribution, Mark
from vmcp_actors.backend.classify import classify, is_connection_closed
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import Failure, FailureKind, HttpStatusError, ResponseTooLargeError
from vmcp_actors.backend.lifeline import Lifeline
from vmcp_actors.backend.stdio_transport import StdioServer

__all__ = ["Diagnosis"]

# Its lines tell the connection's story: they keep the connection's logger.
_log = logging.getLogger("vmcp_actors.backend.session")

_LOST_EXPLANATION_WAIT = 1.0
"""How long a failed request waits for the owner task to learn why the connection died."""


class Diagnosis:
    """The failure verdicts of one connection; used on its event loop only.

    ``stdio`` is set once a stdio server has been started: its exit explains an ended stream.
    """

    def __init__(self, params: ConnectParams, line: Lifeline) -> None:
        self._params = params
        self._line = line
        self.attribution = Attribution(self.on_http_failure)
        self.stdio: StdioServer | None = None
        self._last_stream_error: Exception | None = None

    # --------------------------------------------------------- signals from below

    def on_http_failure(self, error: HttpStatusError) -> None:
        """A request got an HTTP error status: fatal for a forgotten session or any POST over SSE."""
        session_gone = error.session_id_sent and (error.status == 404 or error.unknown_session)
        if not (session_gone or error.method == "POST"):
            return  # listening-stream trouble: the transports retry or report it themselves
        failure = classify(error)
        if not self._line.connected:
            # Fail the handshake now: the SSE transport would otherwise just log the
            # failed POST and leave initialize waiting until connect_timeout.
            self._line.abort_connect(failure)
        elif session_gone or self._params.transport == "sse":
            # A forgotten session is final; and the SDK's SSE POST writer stops for good
            # after any failed POST, so that connection can never send again.
            self._line.lose(failure)

    def on_stream_end(self) -> None:
        """The read stream ended: a stdio server exited or an SSE stream closed."""
        # Streamable HTTP closes its read stream only while its task group is being torn
        # down, and then the owner task learns the real cause from the exception group.
        if self._line.closing or self._line.end.is_set() or self._params.transport == "streamable-http":
            return
        what = self.stdio.end_description() if self.stdio else "the server closed the SSE event stream"
        if self._last_stream_error is not None:
            what = f"{what} ({classify(self._last_stream_error).message})"
        if self._line.connected:
            self._line.lose(Failure(FailureKind.SESSION_LOST, what))
        else:
            self._line.abort_connect(Failure(FailureKind.TRANSIENT, f"{what} before the handshake completed"))

    def on_too_large(self, error: ResponseTooLargeError) -> None:
        """A message went over ``max_response_bytes``: the connection cannot go on."""
        self._line.fail(classify(error))

    def on_stream_exception(self, exc: Exception) -> None:
        """The transport put an exception into the read stream."""
        self._last_stream_error = exc
        if not self._line.connected:
            self._line.abort_connect(classify(exc))
        elif self._params.transport == "sse":
            # The SSE reader reports its fatal error this way right before the stream
            # ends; the loss reported then carries it, so this is only a debug detail.
            _log.debug("MCP backend %r: SSE transport reported %s", self._params.name, type(exc).__name__)
        else:
            _log.warning("MCP backend %r: transport reported %s", self._params.name, type(exc).__name__)

    # ------------------------------------------------------------------- verdicts

    async def request_failure(self, op: str, exc: Exception, mark: Mark, deadline: float, timeout: float) -> Failure:
        """The failure of request ``op`` that raised ``exc``; a lost session also ends the connection."""
        http_error = self.attribution.http_failure_since(mark)
        peer_error = self.attribution.peer_error(exc, mark)
        closed = peer_error is None and is_connection_closed(exc)
        if http_error is not None:
            failure = classify(http_error)
        elif peer_error is not None:
            failure = classify(peer_error)
        elif closed:
            # The transport is gone; the owner task is finding out why (for streamable
            # HTTP the real error surfaces when it exits the transport's task group).
            with anyio.move_on_after(min(max(deadline - time.monotonic(), 0.1), _LOST_EXPLANATION_WAIT)):
                await self._line.done.wait()
            failure = self._line.lost or classify(exc)
        elif isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, f"no answer within {timeout:g}s")
        else:
            failure = classify(exc)
        if failure.kind is FailureKind.SESSION_LOST or closed:
            self._line.lose(failure)
        return attrs.evolve(failure, message=f"{op} failed: {failure.message}")

    def not_open_failure(self, op: str) -> Failure:
        """Why request ``op`` cannot be sent: the connection was lost, or closed."""
        if self._line.lost is not None:
            return attrs.evolve(self._line.lost, message=f"{op} failed: connection was lost: {self._line.lost.message}")
        return Failure(FailureKind.SESSION_LOST, f"{op} failed: the connection is closed")

    def explain(self, exc: BaseException) -> Failure | None:
        """Turn whatever the owner task caught into the failure to report (or None)."""
        if self._line.closing and self._line.lost is None:
            _log.debug("MCP backend %r: error while closing (ignored)", self._params.name, exc_info=exc)
            return None
        if self._line.abort_failure is not None:
            return self._line.abort_failure
        if self._line.lost is not None:
            return self._line.lost
        http_error = self.attribution.observer.failure_since(0)
        return classify(http_error if http_error is not None and not self._line.connected else exc)
