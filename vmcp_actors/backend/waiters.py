"""The answers a backend actor owes: probe outcomes to whoever asked, stop completion to its supervisor.

Requests that need an answer arrive as messages, but the answer comes only later: a
probe's once its ping is back (or skipped), a stop's once the lifecycle has reached a
stopped state.  These classes remember who is waiting, so that every waiter is answered
exactly once, whatever else happens in between; a stop's deadline also bounds how long
closing a session may take meanwhile.
"""

from __future__ import annotations

import concurrent.futures
import time

from vmcp_actors.actorkit.guard import Mailbox, tell_quietly
from vmcp_actors.backend.failures import Failure
from vmcp_actors.backend.messages import ProbeOutcome, StopBackend
from vmcp_actors.backend.session import DEFAULT_CLOSE_TIMEOUT

__all__ = ["ProbeWaiters", "StopWaiters"]


class ProbeWaiters:
    """Who asked for a probe since the last answer; one ping answers all of them."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Mailbox | None, int]] = []

    def add(self, reply_to: Mailbox | None, token: int) -> None:
        """Remember a probe request (``reply_to=None`` wants no answer)."""
        self._waiting.append((reply_to, token))

    def reply(
        self, name: str, *, ok: bool, latency: float | None = None, failure: Failure | None = None, skipped: str = ""
    ) -> None:
        """Answer every waiting request with one outcome, and forget them."""
        waiters, self._waiting = self._waiting, []
        for reply_to, token in waiters:
            if reply_to is not None:
                tell_quietly(reply_to, ProbeOutcome(name, token, ok, latency, failure, skipped))


class StopWaiters:
    """Who waits for the backend to have stopped, and by when the earliest of them needs it."""

    def __init__(self) -> None:
        self._futures: list[concurrent.futures.Future[None]] = []
        self._deadline: float | None = None

    def add(self, stop: StopBackend) -> None:
        """Remember a stop request's completion future and deadline (the earliest one wins)."""
        if stop.done is not None:
            self._futures.append(stop.done)
        if stop.deadline is not None:
            self._deadline = min(stop.deadline, self._deadline or stop.deadline)

    def close_timeout(self) -> float:
        """How long closing a session may take now: the default, cut to what the deadline leaves."""
        timeout = DEFAULT_CLOSE_TIMEOUT
        if self._deadline is not None:
            timeout = min(timeout, max(self._deadline - time.monotonic(), 0.0))
        return timeout

    def settle(self, stopped: bool) -> None:
        """Once stopped: drop the deadline and resolve every waiting future."""
        if not stopped:
            return
        self._deadline = None
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)
