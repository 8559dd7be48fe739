"""A thread-safe inbox that records what actors tell it, for waiting on in tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from testkit.waits import bound


class Inbox:
    """Accepts ``tell`` from any thread; tests wait on a predicate with a deadline."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = threading.Condition()

    def tell(self, message: Any) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def of_type(self, kind: type[Any]) -> list[Any]:
        with self._changed:
            return [m for m in self.messages if isinstance(m, kind)]

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float | None = None, what: str = "") -> None:
        """Wait until ``predicate(messages)`` holds; ``timeout`` goes through :func:`testkit.waits.bound`."""
        limit = bound() if timeout is None else bound(timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.messages), limit):
                raise AssertionError(f"timed out after {limit:g} s waiting for {what or predicate}: {self.messages!r}")
