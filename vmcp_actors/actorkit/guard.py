"""What every actor here shares: a guarded handler, a crash hook, safe sends, owned threads.

pykka kills an actor whose ``tell`` handler raises and silently drops its inbox, stops
every actor in the process when a handler raises a ``BaseException`` (``SystemExit``
from a library, say), and has no supervision.  :class:`GuardedActor` catches everything
a handler raises but ``KeyboardInterrupt`` (logging it with context, so one bad message
costs one message, never the actor, let alone the host's actors), and routes a
failure that still escapes -- a bug in the guard itself, or a crash injected by
:func:`vmcp_actors.testing.inject_crash` -- to an ``on_crash`` callback so a supervisor
can rebuild the actor from the state it last published.

An embedded runtime must stop and join only the threads it started, never another
runtime's in the same process: :meth:`GuardedActor.spawn` returns the actor's thread
with its ref, and :class:`OwnedThreads` keeps them for the owner to join.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import attrs
import pykka

__all__ = ["CrashHandler", "GuardedActor", "Mailbox", "OwnedThreads", "tell_quietly"]

log = logging.getLogger(__name__)

_THREAD_NUMBERS = itertools.count()
# The thread of the actor ``start`` just created, for ``spawn`` on the same (creating)
# thread to pick up: written and read by one thread, in one call, never shared.
_started = threading.local()


class Mailbox(Protocol):
    """Anything that accepts a message without blocking: an ``ActorRef`` or a test inbox."""

    def tell(self, message: Any) -> None:
        """Deliver ``message`` without waiting for it to be handled."""
        ...


@attrs.frozen
class _InjectedCrash:
    """Make the receiving actor fail as an unexpected bug would (outside the guard).

    The one test hook in production code; only :mod:`vmcp_actors.testing` sends it.
    """

    error: Exception


def tell_quietly(target: Mailbox, message: object) -> bool:
    """Send ``message``; a recipient that has stopped meanwhile simply misses it.

    Returns whether the message was handed over, so callers can drop dead subscribers.
    """
    try:
        target.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


CrashHandler = Callable[["GuardedActor", BaseException], None]


class GuardedActor(pykka.ThreadingActor):
    """A pykka actor whose handler never raises into pykka.

    Subclasses implement :meth:`handle`; ``label`` names the actor in every log line.
    Threads are daemons: actors hold no resources that need an orderly exit (I/O lives
    on the loop thread), and a wedged actor must never keep the host process alive.
    """

    use_daemon_thread = True

    def __init__(self, label: str, on_crash: CrashHandler | None = None) -> None:
        super().__init__()
        self.label = label
        self._on_crash = on_crash

    @classmethod
    def spawn(cls, *args: Any, **kwargs: Any) -> tuple[pykka.ActorRef[Self], threading.Thread]:
        """Start the actor like ``start``, and also return the thread it runs on, for its owner to join."""
        _started.thread = None
        ref = cls.start(*args, **kwargs)
        thread: threading.Thread = _started.thread
        _started.thread = None
        return ref, thread

    def _start_actor_loop(self) -> None:
        # pykka's ThreadingActor, keeping hold of the thread so ``spawn`` can hand it over.
        thread = threading.Thread(
            target=self._actor_loop,
            name=f"{type(self).__name__}-{next(_THREAD_NUMBERS)}",
            daemon=self.use_daemon_thread,
        )
        _started.thread = thread
        thread.start()

    def on_receive(self, message: Any) -> Any:
        """Run :meth:`handle` inside the guard: what it raises is logged, and the actor lives on."""
        if isinstance(message, _InjectedCrash):
            raise message.error
        try:
            return self.handle(message)
        except Exception:
            log.exception("%s failed handling %s; the actor continues", self.label, type(message).__name__)
            return None
        except KeyboardInterrupt:
            raise  # only ever meant for the main thread: not ours to swallow
        except BaseException as exc:
            # pykka answers any other BaseException (a library's SystemExit, a stray
            # GeneratorExit) by stopping *every* actor in the process, the host's too.
            # One bad message must cost one message, so it is contained like an error.
            log.error(
                "%s: %s escaped handling %s; contained, the actor continues",
                self.label,
                type(exc).__name__,
                type(message).__name__,
                exc_info=True,
            )
            return None

    def handle(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise TypeError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Something escaped the guard and pykka is stopping the actor: tell whoever rebuilds it."""
        log.error("%s died: %r", self.label, exception_value)
        if self._on_crash is not None:
            try:
                self._on_crash(self, exception_value)
            except Exception:
                log.exception("%s: crash handler failed", self.label)


class OwnedThreads:
    """The threads of the actors one owner started, so that it joins exactly those.

    One thread records (the owner's), always by replacing the whole tuple, so a reader
    on another thread sees a consistent tuple; once the owner has stopped, it sees all.
    Threads that have ended are dropped as new ones are recorded, so a long-lived owner
    that restarts actors now and then does not accumulate them.
    """

    __slots__ = ("_threads",)

    def __init__(self) -> None:
        self._threads: tuple[threading.Thread, ...] = ()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The recorded threads still alive when the latest one was recorded, and that one."""
        return self._threads

    def add(self, thread: threading.Thread) -> None:
        """Record the thread of an actor the owner just started."""
        self._threads = (*(t for t in self._threads if t.is_alive()), thread)

    def join(self, deadline: float) -> tuple[threading.Thread, ...]:
        """Wait (until ``deadline``, monotonic) for every recorded thread to end; return those still alive."""
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))
        return tuple(t for t in self._threads if t.is_alive())
