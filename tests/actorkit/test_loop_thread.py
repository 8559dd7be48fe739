"""LoopThread: one asyncio loop in a named non-daemon thread, with a bounded, idempotent stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
import warnings

import pytest

from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

WAIT = 10.0


async def _whoami() -> threading.Thread:
    return threading.current_thread()


def test_runs_coroutines_on_its_own_named_non_daemon_thread() -> None:
    loop_thread = LoopThread(name="aio-under-test")
    loop_thread.start()
    try:
        thread = loop_thread.submit(_whoami()).result(WAIT)
        assert thread is loop_thread.thread
        assert thread.name == "aio-under-test"
        assert not thread.daemon
        assert loop_thread.running
        assert not loop_thread.in_loop_thread()
    finally:
        loop_thread.stop(WAIT)
    assert not loop_thread.thread.is_alive()
    assert loop_thread.loop.is_closed()
    assert not loop_thread.running


def test_call_soon_runs_on_the_loop_thread() -> None:
    loop_thread = LoopThread()
    loop_thread.start()
    ran_on: list[threading.Thread] = []
    done = threading.Event()

    def record(tag: str) -> None:
        assert tag == "hello"
        ran_on.append(threading.current_thread())
        done.set()

    try:
        loop_thread.call_soon(record, "hello")
        assert done.wait(WAIT)
        assert ran_on == [loop_thread.thread]
    finally:
        loop_thread.stop(WAIT)


def test_submit_propagates_exceptions() -> None:
    async def boom() -> None:
        raise ValueError("from the loop")

    loop_thread = LoopThread()
    loop_thread.start()
    try:
        with pytest.raises(ValueError, match="from the loop"):
            loop_thread.submit(boom()).result(WAIT)
    finally:
        loop_thread.stop(WAIT)


def test_stop_cancels_pending_tasks_and_waits_for_their_cleanup() -> None:
    cleaned_up = threading.Event()
    started = threading.Event()

    async def forever() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits still gets to run
            cleaned_up.set()

    loop_thread = LoopThread()
    loop_thread.start()
    future = loop_thread.submit(forever())
    assert started.wait(WAIT)
    loop_thread.stop(WAIT)
    assert cleaned_up.is_set()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(0)
    assert not loop_thread.thread.is_alive()
    assert loop_thread.loop.is_closed()


def test_stop_is_bounded_even_if_a_task_refuses_to_die() -> None:
    started = threading.Event()

    async def stubborn() -> None:
        never = asyncio.Event()
        started.set()
        while True:
            try:
                await never.wait()
            except asyncio.CancelledError:
                continue

    loop_thread = LoopThread()
    loop_thread.start()
    loop_thread.submit(stubborn())
    assert started.wait(WAIT)
    began = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loop_thread.stop(1.0)
    assert time.monotonic() - began < 2.0
    loop_thread.thread.join(WAIT)
    assert not loop_thread.thread.is_alive()


def test_stop_is_idempotent_and_submit_after_stop_is_refused() -> None:
    loop_thread = LoopThread()
    loop_thread.start()
    loop_thread.stop(WAIT)
    began = time.monotonic()
    loop_thread.stop(WAIT)
    loop_thread.stop(0.0)
    assert time.monotonic() - began < 1.0

    async def never_run() -> None:
        raise AssertionError("must not run")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LoopThreadStoppedError):
            loop_thread.submit(never_run())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    with pytest.raises(LoopThreadStoppedError):
        loop_thread.call_soon(print, "nope")


def test_stop_before_start_and_double_start() -> None:
    never_started = LoopThread()
    never_started.stop(WAIT)
    with pytest.raises(RuntimeError):
        never_started.start()

    loop_thread = LoopThread()
    loop_thread.start()
    try:
        with pytest.raises(RuntimeError):
            loop_thread.start()
    finally:
        loop_thread.stop(WAIT)


def test_stop_from_inside_the_loop_thread_does_not_deadlock() -> None:
    loop_thread = LoopThread()
    loop_thread.start()
    loop_thread.call_soon(loop_thread.stop, WAIT)
    loop_thread.thread.join(WAIT)
    assert not loop_thread.thread.is_alive()
    assert loop_thread.loop.is_closed()


def test_default_executor_threads_are_shut_down() -> None:
    async def use_executor() -> str:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: threading.current_thread().name)

    loop_thread = LoopThread()
    loop_thread.start()
    worker_name = loop_thread.submit(use_executor()).result(WAIT)
    assert worker_name != loop_thread.name
    loop_thread.stop(WAIT)
    assert worker_name not in {thread.name for thread in threading.enumerate()}
