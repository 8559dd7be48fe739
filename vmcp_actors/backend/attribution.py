"""Whose failure was it: what the watchers saw, asked once a request has failed.

A failed request surfaces as whatever the SDK raises, which often hides the deciding
fact: the HTTP status it swallowed, or whether a JSON-RPC error came from the server or
from the SDK itself (they share codes: -32000 is both the SDK's "connection closed" and
the first of the codes servers use for their own errors).  :class:`Attribution` holds the
watchers of one connection (:class:`~vmcp_actors.backend.transport_watch.HttpObserver`,
:class:`~vmcp_actors.backend.transport_watch.PeerErrors`, the ends of POST event streams
from :class:`~vmcp_actors.backend.http_bodies.BodyWatch`); a request takes a :class:`Mark`
before it is sent and asks afterwards what happened since.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from vmcp_actors.backend.classify import error_response_of
from vmcp_actors.backend.failures import HttpStatusError, PeerErrorResponse
from vmcp_actors.backend.http_bodies import BodyEnd
from vmcp_actors.backend.transport_watch import HttpObserver, PeerErrors

__all__ = ["Attribution", "Mark"]


@attrs.frozen
class Mark:
    """Positions in what the watchers saw, taken before a request was sent."""

    http: int
    peer: int
    post_stream_ends: int


class Attribution:
    """The watchers of one connection, and the questions a failed request asks them."""

    def __init__(self, on_http_failure: Callable[[HttpStatusError], None]) -> None:
        self.observer = HttpObserver(on_http_failure)
        self.peer_errors = PeerErrors()
        self._post_stream_ends = 0

    def mark(self) -> Mark:
        """Where the watchers are now."""
        return Mark(self.observer.mark(), self.peer_errors.mark(), self._post_stream_ends)

    def body_ended(self, end: BodyEnd) -> None:
        """An event-stream body ended on its own; a POST's may have left its request unanswered."""
        if end.method == "POST":
            self._post_stream_ends += 1

    def http_failure_since(self, mark: Mark) -> HttpStatusError | None:
        """The latest failed POST since ``mark``: the status the SDK did not pass on."""
        return self.observer.failure_since(mark.http)

    def peer_error(self, exc: BaseException, mark: Mark) -> PeerErrorResponse | None:
        """``exc`` as the server's own error response, if that is what it was.

        It was if an error response with its code and message came through the read
        stream since ``mark``, unless a POST's event stream ended unanswered meanwhile:
        the streamable-HTTP transport then puts its own "connection closed" error into
        the read stream, and that one is the transport's.
        """
        response = error_response_of(exc)
        if response is None or self._post_stream_ends > mark.post_stream_ends:
            return None
        code, message = response
        if not self.peer_errors.sent_since(mark.peer, code, message):
            return None
        return PeerErrorResponse(code, message)
