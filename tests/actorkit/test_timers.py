"""Timers: the manual scheduler steps time exactly; the thread scheduler really fires."""

from __future__ import annotations

import threading

from vmcp_actors.actorkit.timers import ManualClock, ManualScheduler, ThreadScheduler


def test_manual_scheduler_fires_in_due_order_with_the_clock_at_each_due_time() -> None:
    scheduler = ManualScheduler()
    start = scheduler.clock.monotonic()
    fired: list[tuple[str, float]] = []
    scheduler.call_later(2.0, lambda: fired.append(("b", scheduler.clock.monotonic() - start)))
    scheduler.call_later(1.0, lambda: fired.append(("a", scheduler.clock.monotonic() - start)))
    cancelled = scheduler.call_later(1.5, lambda: fired.append(("x", 0.0)))
    cancelled.cancel()
    assert scheduler.next_due() == 1.0
    assert scheduler.advance(1.9) == 1
    assert scheduler.advance(0.1) == 1
    assert fired == [("a", 1.0), ("b", 2.0)]
    assert scheduler.clock.monotonic() - start == 2.0
    assert scheduler.next_due() is None


def test_a_callback_scheduled_by_a_callback_fires_in_the_same_advance() -> None:
    scheduler = ManualScheduler()
    fired: list[str] = []
    scheduler.call_later(1.0, lambda: scheduler.call_later(1.0, lambda: fired.append("second")))
    scheduler.advance(5.0)
    assert fired == ["second"]


def test_manual_clock_moves_wall_and_monotonic_together() -> None:
    clock = ManualClock()
    wall, mono = clock.now(), clock.monotonic()
    clock.advance(90.0)
    assert (clock.now() - wall).total_seconds() == 90.0
    assert clock.monotonic() - mono == 90.0


def test_thread_scheduler_fires_and_survives_a_failing_callback() -> None:
    scheduler = ThreadScheduler()
    done = threading.Event()
    order: list[int] = []

    def boom() -> None:
        raise RuntimeError("callback bug")

    scheduler.call_later(0.0, boom)

    def last() -> None:
        order.append(2)
        done.set()

    scheduler.call_later(0.02, last)
    scheduler.call_later(0.01, lambda: order.append(1))
    assert done.wait(5)
    assert order == [1, 2]
    scheduler.stop()
    assert not any(t.name == "vmcp-scheduler" for t in threading.enumerate())


def test_thread_scheduler_stop_cancels_pending_timers() -> None:
    scheduler = ThreadScheduler()
    fired = threading.Event()
    scheduler.call_later(60.0, fired.set)
    assert scheduler.pending() == 1
    scheduler.stop()
    assert scheduler.pending() == 0
    late = scheduler.call_later(0.0, fired.set)
    assert late.cancelled
    assert not fired.is_set()
