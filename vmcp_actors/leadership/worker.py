"""Threads that do the blocking Kubernetes calls, so no actor ever waits on the network.

:class:`IoWorker` runs jobs one at a time, in order, on its own thread (the elector's
Lease requests, the recorder's Event writes); each job reports its outcome to its actor
as a message.  :class:`Watcher` keeps one watch open, reopening it after a failure with
a jittered delay so a server that is down is not hammered.  Both stop within a bounded
time: the worker after the job in progress (every request has a timeout), the watcher
at once (its blocked read is interrupted).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Iterable
from typing import Final, Generic, TypeVar

__all__ = ["IoWorker", "Watcher", "jittered"]

log = logging.getLogger(__name__)

_STOP: Final = object()


class IoWorker:
    """One daemon thread running submitted jobs in order; a failing job is logged, never fatal."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The worker's thread (for owners that join what they started)."""
        return self._thread

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, job: Callable[[], object]) -> bool:
        """Queue ``job``; False once the worker is stopping (the job is dropped)."""
        if self._stopped:
            return False
        self._jobs.put(job)
        return True

    def stop(self, timeout: float) -> bool:
        """Run what is queued, then end; True if the thread ended within ``timeout``."""
        self._stopped = True
        self._jobs.put(_STOP)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            assert callable(job)
            try:
                job()
            except Exception:
                log.exception("%s: job failed", self._thread.name)


E = TypeVar("E")


class Watcher(Generic[E]):
    """Keeps a watch open on a thread and hands each event to ``on_event``.

    ``open_stream`` opens a new watch (an iterable of events with ``close``); it is called
    again when a watch ends normally (at once) or fails (after ``retry_delay(failures)``
    seconds, interrupted by :meth:`stop`).  ``on_error`` hears each failure.
    """

    def __init__(
        self,
        name: str,
        open_stream: Callable[[], Iterable[E]],
        on_event: Callable[[E], None],
        on_error: Callable[[Exception], None],
        retry_delay: Callable[[int], float],
    ) -> None:
        self._open = open_stream
        self._on_event = on_event
        self._on_error = on_error
        self._retry_delay = retry_delay
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _current between the watch thread and stop()
        self._current: Iterable[E] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The watch thread."""
        return self._thread

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Close the open watch and end the thread; True if it ended within ``timeout``."""
        self._stop.set()
        with self._lock:
            current = self._current
        if current is not None:
            _close(current)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                stream = self._open()
                with self._lock:
                    self._current = stream
                if self._stop.is_set():
                    _close(stream)
                    return
                for event in stream:
                    failures = 0
                    self._on_event(event)
            except Exception as error:  # noqa: BLE001 - every failure is reported and retried
                if self._stop.is_set():
                    return
                failures += 1
                self._on_error(error)
                self._stop.wait(self._retry_delay(failures))
            finally:
                with self._lock:
                    self._current = None


def _close(stream: object) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.debug("closing a watch failed", exc_info=True)


def jittered(base: float, maximum: float, rng: random.Random) -> Callable[[int], float]:
    """``base`` doubling per failure up to ``maximum``, with up to 50 % added jitter."""

    def delay(failures: int) -> float:
        raw: float = min(base * 2.0 ** max(failures - 1, 0), maximum)
        return raw * (1 + 0.5 * rng.random())

    return delay
