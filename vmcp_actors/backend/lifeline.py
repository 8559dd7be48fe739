"""How one MCP connection ends: closed on request, lost on its own, or its connect aborted.

Many things can end a connection, from several tasks and callbacks at once: a close, a
dead process, a forgotten session, a broken event stream, a message over the size
limit.  :class:`Lifeline` keeps the rules in one place: the first cause wins and is
reported once (``on_lost``, on the event loop); nothing is reported as lost after a
close was asked for or before the handshake completed (then it aborts the connect
instead, with that cause).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import anyio
import attrs

from vmcp_actors.backend.failures import BackendError, Failure, FailureKind

__all__ = ["Lifeline", "call_safely"]

_log = logging.getLogger(__name__)

_A = TypeVar("_A")


def call_safely(name: str, callback: Callable[[_A], None], argument: _A) -> None:
    """Call a user callback on the event loop; an exception in it is logged, never raised."""
    try:
        callback(argument)
    except Exception:  # noqa: BLE001 - a faulty callback must not break the event loop
        _log.exception("MCP backend %r: callback %r raised", name, callback)


class Lifeline:
    """The end state of one connection; only touched on its event loop.

    ``end`` is set when the connection should end (closed or lost), ``done`` once
    everything is released.  ``suspicion`` (why the connection was being checked) is
    prefixed to a loss found meanwhile, which then counts as a lost session.
    """

    def __init__(self, name: str, on_lost: Callable[[Failure], None] | None) -> None:
        self._name = name
        self._on_lost = on_lost
        self.end = asyncio.Event()
        self.done = asyncio.Event()
        self.connect_scope: anyio.CancelScope | None = None
        self.connected = False
        self.closing = False
        self.abort_failure: Failure | None = None
        self.lost: Failure | None = None
        self.suspicion = ""

    def fail(self, failure: Failure) -> None:
        """The transport cannot go on: abort the connect, or lose the connection, with ``failure``."""
        if self.connected:
            self.lose(failure)
        else:
            self.abort_connect(failure)

    def abort_connect(self, failure: Failure) -> None:
        """Fail the handshake now with ``failure`` (the first one given wins)."""
        if self.abort_failure is None:
            self.abort_failure = failure
        if self.connect_scope is not None:
            self.connect_scope.cancel()

    def lose(self, failure: Failure) -> None:
        """Record that the connection died on its own; first cause wins, reported once."""
        if self.lost is not None or self.closing or not self.connected:
            return
        if self.suspicion:
            kind = failure.kind if failure.kind is FailureKind.AUTH_REQUIRED else FailureKind.SESSION_LOST
            failure = attrs.evolve(failure, kind=kind, message=f"{self.suspicion}, then {failure.message}")
        self.lost = failure
        self.end.set()
        _log.info("MCP backend %r connection lost: %s", self._name, failure.message)
        if self._on_lost is not None:
            asyncio.get_running_loop().call_soon(call_safely, self._name, self._on_lost, failure)

    def finish(self, ready: asyncio.Future[None], failure: Failure | None) -> None:
        """Publish the outcome once everything is released: the connect's result, or the loss."""
        if not ready.done():
            if failure is None:
                failure = Failure(FailureKind.SESSION_LOST, "the connection closed during the handshake")
            ready.set_exception(BackendError(failure))
        elif failure is not None:
            self.lose(failure)
        self.end.set()
        self.done.set()
