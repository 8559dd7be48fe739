"""Clocks and timed delivery, injectable so time-based rules are tested without sleeping.

pykka has no timers.  Actors here never sleep to wait: they ask a :class:`Scheduler`
to call back later (usually ``actor_ref.tell(SomeMessage)``), and keep handling their
inbox meanwhile.  Production uses :class:`SystemClock` and :class:`ThreadScheduler`
(one shared thread); tests use :class:`ManualClock` and :class:`ManualScheduler` and
step time explicitly, so a 30-minute backoff is checked in microseconds.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock",
    "ManualClock",
    "ManualScheduler",
    "Scheduler",
    "SystemClock",
    "ThreadScheduler",
    "Timer",
]

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Where time comes from: a monotonic clock for intervals, a wall clock for stamps."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current UTC wall time (aware)."""
        ...


class SystemClock:
    """The real clocks of the process."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current UTC wall time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start: datetime | None = None) -> None:
        self._monotonic = 1000.0
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The manual monotonic reading (starts at 1000)."""
        with self._lock:
            return self._monotonic

    def now(self) -> datetime:
        """The manual wall time."""
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance by {seconds})")
        with self._lock:
            self._monotonic += seconds
            self._wall += timedelta(seconds=seconds)


class Timer:
    """A handle to one scheduled callback; cancelling it is idempotent and thread-safe."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], object]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Make sure the callback does not run (if it has not already)."""
        self.cancelled = True


class Scheduler(Protocol):
    """Calls a function after a delay measured on :attr:`clock`."""

    @property
    def clock(self) -> Clock:
        """The clock delays are measured on."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` once, ``delay`` seconds from now; it must not block."""
        ...


def _run_callback(timer: Timer) -> None:
    if timer.cancelled:
        return
    try:
        timer.callback()
    except Exception:
        # A failing callback must not stop every other timer in the process.
        log.exception("scheduled callback %r failed", timer.callback)


class ThreadScheduler:
    """One daemon thread with a heap of timers.

    Callbacks run on the scheduler thread and must be quick (a ``tell``); the thread is a
    daemon so a forgotten scheduler never keeps the host process alive, and
    :meth:`stop` joins it so a clean shutdown leaves no thread behind.
    """

    def __init__(self, clock: Clock | None = None, name: str = "vmcp-scheduler") -> None:
        self._clock: Clock = clock or SystemClock()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def clock(self) -> Clock:
        """The clock delays are measured on."""
        return self._clock

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` on the scheduler thread ``delay`` seconds from now (never after :meth:`stop`)."""
        timer = Timer(self._clock.monotonic() + max(delay, 0.0), callback)
        with self._cond:
            if self._stopped:
                timer.cancel()
                return timer
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify()
        return timer

    def pending(self) -> int:
        """How many timers are scheduled and not cancelled."""
        with self._cond:
            return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every timer and join the thread (bounded by ``timeout``); idempotent."""
        with self._cond:
            self._stopped = True
            for _, _, timer in self._heap:
                timer.cancel()
            self._heap.clear()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, timer = heapq.heappop(self._heap)
            _run_callback(timer)


class ManualScheduler:
    """A scheduler driven by :meth:`advance`, for deterministic tests.

    Callbacks run in the thread that calls :meth:`advance`, in due order, with the clock
    set to each callback's due time, exactly as if time had passed.
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self._clock = clock or ManualClock()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    @property
    def clock(self) -> ManualClock:
        """The manual clock that :meth:`advance` moves."""
        return self._clock

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` when :meth:`advance` reaches ``delay`` seconds from now."""
        timer = Timer(self._clock.monotonic() + max(delay, 0.0), callback)
        with self._lock:
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
        return timer

    def pending(self) -> int:
        """How many timers are scheduled and not cancelled."""
        with self._lock:
            return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def next_due(self) -> float | None:
        """Seconds until the next live timer fires, or None when none is pending."""
        with self._lock:
            live = [due for due, _, timer in self._heap if not timer.cancelled]
        return None if not live else max(min(live) - self._clock.monotonic(), 0.0)

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, firing what falls due; returns how many fired."""
        target = self._clock.monotonic() + seconds
        fired = 0
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > target:
                    break
                due, _, timer = heapq.heappop(self._heap)
            step = due - self._clock.monotonic()
            if step > 0:
                self._clock.advance(step)
            if not timer.cancelled:
                fired += 1
            _run_callback(timer)
        remaining = target - self._clock.monotonic()
        if remaining > 0:
            self._clock.advance(remaining)
        return fired
