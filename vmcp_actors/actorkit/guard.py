"""What every actor here shares: a guarded handler, a crash hook, and safe sends.

pykka kills an actor whose ``tell`` handler raises and silently drops its inbox, and it
has no supervision.  :class:`GuardedActor` catches everything a handler raises (logging
it with context, so one bad message costs one message, never the actor), and routes a
failure that still escapes -- a bug in the guard itself, or the test hook
:class:`CrashForTest` -- to an ``on_crash`` callback so a supervisor can rebuild the
actor from the state it last published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import pykka

__all__ = ["CrashForTest", "GuardedActor", "Mailbox", "tell_quietly"]

log = logging.getLogger(__name__)


class Mailbox(Protocol):
    """Anything that accepts a message without blocking: an ``ActorRef`` or a test inbox."""

    def tell(self, message: Any) -> None: ...


@attrs.frozen
class CrashForTest:
    """Make the receiving actor fail as an unexpected bug would (outside the guard)."""

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

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CrashForTest):
            raise message.error
        try:
            return self.handle(message)
        except Exception:
            log.exception("%s failed handling %s; the actor continues", self.label, type(message).__name__)
            return None

    def handle(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise TypeError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("%s died: %r", self.label, exception_value)
        if self._on_crash is not None:
            try:
                self._on_crash(self, exception_value)
            except Exception:
                log.exception("%s: crash handler failed", self.label)
