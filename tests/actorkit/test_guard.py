"""GuardedActor: handler errors cost one message, an injected crash reaches on_crash, owners join their own threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from testkit.inbox import Inbox
from vmcp_actors.actorkit.guard import GuardedActor, OwnedThreads, tell_quietly
from vmcp_actors.testing import inject_crash


class Echo(GuardedActor):
    """Answers with the thread it runs on; raises for "bad"."""

    def __init__(self, crashes: Inbox | None = None) -> None:
        super().__init__("echo", None if crashes is None else lambda actor, error: crashes.tell(error))

    def handle(self, message: Any) -> Any:
        if message == "bad":
            raise ValueError("a bug in one handler")
        if message == "exit":
            raise SystemExit(3)  # what a library calling sys.exit() does inside a handler
        return threading.current_thread()


@pytest.fixture
def refs() -> Iterator[list[pykka.ActorRef[Any]]]:
    started: list[pykka.ActorRef[Any]] = []
    yield started
    for ref in started:
        if ref.is_alive():
            ref.stop(timeout=5)


def test_spawn_hands_over_the_thread_the_actor_runs_on(refs: list[pykka.ActorRef[Any]]) -> None:
    ref, thread = Echo.spawn()
    refs.append(ref)
    assert ref.ask("which", timeout=5) is thread
    assert thread.daemon
    assert thread.name.startswith("Echo-")
    ref.stop(timeout=5)
    thread.join(5)
    assert not thread.is_alive()


def test_a_failing_handler_costs_one_message_and_an_injected_crash_reaches_on_crash(
    refs: list[pykka.ActorRef[Any]],
) -> None:
    crashes = Inbox()
    ref, thread = Echo.spawn(crashes)
    refs.append(ref)
    assert ref.ask("bad", timeout=5) is None  # logged, answered with None, the actor lives on
    assert ref.ask("again", timeout=5) is thread
    inject_crash(ref, RuntimeError("injected"))
    crashes.wait_for(lambda seen: len(seen) == 1, timeout=5)
    (error,) = crashes.messages
    assert isinstance(error, RuntimeError)
    thread.join(5)
    assert not ref.is_alive()
    assert not tell_quietly(ref, "late")  # a dead recipient simply misses it


def test_a_system_exit_in_a_handler_costs_one_message_not_every_actor_in_the_process(
    refs: list[pykka.ActorRef[Any]],
) -> None:
    """Bug: pykka stops *every* actor on a BaseException escaping a handler; the guard must contain it."""
    ref, thread = Echo.spawn()
    bystander, bystander_thread = Echo.spawn()
    refs.extend([ref, bystander])
    ref.tell("exit")
    assert ref.ask("after exit", timeout=5) is thread  # the same actor handles the next message
    assert ref.ask("exit", timeout=5) is None  # an ask gets None, like any failed handler
    assert bystander.ask("still here", timeout=5) is bystander_thread


def test_owned_threads_joins_exactly_what_it_recorded(refs: list[pykka.ActorRef[Any]]) -> None:
    owned = OwnedThreads()
    mine, my_thread = Echo.spawn()
    other, other_thread = Echo.spawn()  # someone else's actor, in the same process
    refs.extend([mine, other])
    owned.add(my_thread)
    assert owned.threads == (my_thread,)
    mine.stop(block=False)
    started = time.monotonic()
    assert owned.join(time.monotonic() + 10.0) == ()
    assert time.monotonic() - started < 5.0  # did not wait for the other actor's thread
    assert not my_thread.is_alive()
    assert other_thread.is_alive()
    fresh, fresh_thread = Echo.spawn()
    refs.append(fresh)
    owned.add(fresh_thread)
    assert owned.threads == (fresh_thread,)  # ended threads are dropped as new ones come


def test_join_returns_the_threads_that_outlived_the_deadline(refs: list[pykka.ActorRef[Any]]) -> None:
    owned = OwnedThreads()
    ref, thread = Echo.spawn()
    refs.append(ref)
    owned.add(thread)
    assert owned.join(time.monotonic()) == (thread,)  # still running: reported, not waited for
