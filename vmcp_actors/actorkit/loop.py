"""The asyncio loop thread: one event loop that owns every MCP client session.

Actors (pykka threads) must never block on the network, and the MCP SDK is async
(anyio on asyncio).  So all sessions live on one event loop running in a dedicated
thread; actors hand it coroutines with :meth:`LoopThread.submit` and get a
:class:`concurrent.futures.Future` back, whose done-callback turns the result into an
actor message.  Nothing else ever runs the loop.

Lifecycle: :meth:`LoopThread.start` creates the thread and returns once the loop runs;
:meth:`LoopThread.stop` cancels whatever is still scheduled, waits for it within the
timeout, shuts down the default executor, closes the loop and joins the thread.  The
thread is deliberately *not* a daemon: a daemon thread is killed mid-flight at
interpreter exit, which would orphan stdio server processes and skip their cleanup, so
owners must call ``stop`` (the runtime does on shutdown) and ``stop`` is bounded so that
doing so can never hang the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "LoopThreadStoppedError"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Share of the stop timeout spent waiting for cancelled tasks; the rest is kept for
# shutting down the default executor, closing the loop and joining the thread.
_TASK_DRAIN_SHARE = 0.8


class LoopThreadStoppedError(RuntimeError):
    """Work was submitted to a :class:`LoopThread` that is not running (not started or stopped)."""


class LoopThread:
    """Owns one asyncio event loop running in a named, non-daemon thread.

    Thread-safe: :meth:`submit`, :meth:`call_soon` and :meth:`stop` may be called from
    any thread, including the loop thread itself (``stop`` from inside the loop only
    schedules the shutdown, since the loop thread cannot join itself).
    """

    def __init__(self, name: str = "vmcp-aio") -> None:
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._start_called = False
        self._stop_requested = False

    @property
    def name(self) -> str:
        """The thread's name (shows up in thread dumps and log records)."""
        return self._name

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop; only touch it from the loop thread or via thread-safe calls."""
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        """The thread that runs the loop."""
        return self._thread

    @property
    def running(self) -> bool:
        """True between a completed :meth:`start` and the beginning of :meth:`stop`."""
        with self._lock:
            return self._start_called and not self._stop_requested and self._thread.is_alive()

    def in_loop_thread(self) -> bool:
        """Whether the caller is running on the loop thread."""
        return threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the thread and return once its loop is running.

        Raises :class:`RuntimeError` if called twice or after :meth:`stop`: a loop is
        closed for good when stopped, and silently restarting would hide lifecycle bugs.
        """
        with self._lock:
            if self._start_called or self._stop_requested:
                raise RuntimeError(f"LoopThread {self._name!r} can only be started once")
            self._start_called = True
        self._thread.start()
        self._started.wait()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop; thread-safe.

        The returned future completes with the coroutine's result or exception, and
        cancelling it cancels the task.  Raises :class:`LoopThreadStoppedError` (and
        closes the coroutine, so no "never awaited" warning) when the loop is not running.
        """
        with self._lock:
            accepting = self._start_called and not self._stop_requested
            if accepting:
                try:
                    return asyncio.run_coroutine_threadsafe(coro, self._loop)
                except RuntimeError:  # the loop closed under us (its thread died)
                    accepting = False
        coro.close()
        raise LoopThreadStoppedError(f"LoopThread {self._name!r} is not running")

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on the loop thread as soon as possible; thread-safe.

        Exceptions raised by ``fn`` go to the loop's exception handler (logged).
        Raises :class:`LoopThreadStoppedError` when the loop is not running.
        """
        with self._lock:
            if self._start_called and not self._stop_requested:
                with contextlib.suppress(RuntimeError):  # the loop closed under us: not running
                    self._loop.call_soon_threadsafe(fn, *args)
                    return
        raise LoopThreadStoppedError(f"LoopThread {self._name!r} is not running")

    def stop(self, timeout: float) -> None:
        """Cancel remaining tasks, close the loop and join the thread, within ``timeout`` seconds.

        Never raises and never waits longer than ``timeout`` (plus scheduling noise):
        tasks that ignore cancellation past their share of the budget are abandoned with
        a warning, and if the thread still has not finished the method returns anyway.

        Idempotent, because shutdown has several independent initiators (the runtime's
        ``stop``, a supervisor tearing down after a crash, ``atexit`` hooks, test
        fixtures) and it must be safe for all of them to call it, in any order.  A later
        call just waits (up to its own timeout) for the first one to finish.  Calling it
        from the loop thread schedules the shutdown and returns without joining.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            first = not self._stop_requested
            self._stop_requested = True
            started = self._start_called
        if not started:
            if first:
                self._loop.close()
            return
        if first:
            # RuntimeError: the loop is already closed, the thread is finishing or gone.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._begin_shutdown, deadline)
        if self.in_loop_thread():
            return
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            _log.warning("LoopThread %r did not finish within %.1fs; a task is blocking the loop", self._name, timeout)

    # ------------------------------------------------------------------ loop thread

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.call_soon(self._started.set)
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:  # noqa: BLE001 - logged; the loop must still be closed below
                _log.exception("LoopThread %r: shutting down async generators failed", self._name)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self._started.set()  # never leave start() waiting if the loop died early

    def _begin_shutdown(self, deadline: float) -> None:
        self._loop.create_task(self._drain(deadline), name=f"{self._name}-shutdown")

    async def _drain(self, deadline: float) -> None:
        """Cancel every other task, wait for them within budget, then stop the loop.

        Loops because cancelled tasks may schedule cleanup tasks of their own (the MCP
        transports do), which must be cancelled and awaited as well.
        """
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        now = time.monotonic()
        drain_deadline = now + (deadline - now) * _TASK_DRAIN_SHARE
        try:
            while True:
                pending = [task for task in asyncio.all_tasks(loop) if task is not me and not task.done()]
                if not pending:
                    break
                for task in pending:
                    task.cancel()
                remaining = drain_deadline - time.monotonic()
                if remaining <= 0:
                    _log.warning(
                        "LoopThread %r: %d task(s) did not finish after cancellation: %s",
                        self._name,
                        len(pending),
                        ", ".join(sorted(task.get_name() for task in pending)),
                    )
                    break
                await asyncio.wait(pending, timeout=remaining)
            remaining = deadline - time.monotonic()
            if remaining > 0:
                try:
                    await asyncio.wait_for(loop.shutdown_default_executor(), remaining)
                except TimeoutError:
                    _log.warning("LoopThread %r: default executor threads still busy at shutdown", self._name)
        finally:
            loop.stop()
