"""What every status sink promises: the ``Reporter`` protocol and its idempotent ``Shutdown``.

The protocol follows toolhive's ``status.Reporter``: ``report_status`` publishes a whole
status, ``start`` returns a ``shutdown`` function that is idempotent, callable from any
thread, and returns only once pending updates are flushed.  :class:`OnceShutdown` gives
every sink that last guarantee without each one re-implementing it.  A sink that is
rate limited says so through :class:`Throttled`, so the coalescing actor can wait on a
timer for the newest status instead of blocking inside the sink with an older one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from vmcp_actors.errors import ShutdownTimeoutError
from vmcp_actors.model.status import Status

__all__ = ["OnceShutdown", "Reporter", "Shutdown", "Throttled", "no_shutdown", "ready_in"]

log = logging.getLogger(__name__)


class Shutdown(Protocol):
    """Stops a reporter after flushing what it holds; idempotent and thread-safe."""

    def __call__(self, timeout: float | None = None) -> None:
        """Flush and stop, waiting at most ``timeout`` seconds (``None``: the reporter's default)."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """Publishes the vMCP's status somewhere an operator looks."""

    def report_status(self, status: Status | None) -> None:
        """Publish ``status`` (the complete status, not a delta); ``None`` is a no-op."""
        ...

    def start(self) -> Shutdown:
        """Prepare the reporter and return the function that shuts it down."""
        ...


@runtime_checkable
class Throttled(Protocol):
    """A sink that knows when it will accept the next write (a client-side rate limit)."""

    def ready_in(self) -> float:
        """Seconds until a write would go out without waiting; 0 when it would go now."""
        ...


def ready_in(sink: object) -> float:
    """Seconds ``sink`` asks to wait before the next write: 0 unless it is :class:`Throttled`.

    A throttled sink whose ``ready_in`` fails is written to anyway (the failure is
    logged): a broken rate limiter must not stop the status from being reported.
    """
    if not isinstance(sink, Throttled):
        return 0.0
    try:
        return max(float(sink.ready_in()), 0.0)
    except Exception:
        log.exception("status sink %s: ready_in() failed; writing anyway", type(sink).__name__)
        return 0.0


class OnceShutdown:
    """Runs a shutdown action exactly once, whichever thread calls and however often.

    Later callers wait for the first call to finish, so every caller returns only once
    the flush is complete, and they see the same outcome: if the first call raised, the
    same exception is raised again rather than silently reporting success.
    """

    def __init__(self, action: Callable[[float | None], None]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._error: BaseException | None = None

    def __call__(self, timeout: float | None = None) -> None:
        """Run the action if no caller has yet, else wait (up to ``timeout``) for its outcome."""
        with self._lock:
            first = not self._started
            self._started = True
        if first:
            try:
                self._action(timeout)
            except BaseException as exc:
                self._error = exc
                raise
            finally:
                self._done.set()
            return
        if not self._done.wait(timeout):
            raise ShutdownTimeoutError(f"shutdown still in progress in another thread after {timeout} s")
        if self._error is not None:
            raise self._error


def no_shutdown() -> Shutdown:
    """The shutdown of a sink that holds nothing: flushing is a no-op, still idempotent."""
    return OnceShutdown(lambda timeout: None)
