"""The one-slot mailbox between the threads that report statuses and the reporter's actor.

A status storm must not become an inbox storm: every report overwrites the slot (latest
wins) and only the first one since the actor last looked sends a wake-up.  The slot
belongs to the :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`, not to its
actor, so a status waiting in it survives the actor's death.
"""

from __future__ import annotations

import collections

from vmcp_actors.model.status import Status

__all__ = ["LatestSlot"]


class LatestSlot:
    """The one-slot mailbox between senders and the actor: latest wins, one wake-up in flight.

    deque appends and pops are atomic and ``maxlen=1`` makes an append replace whatever
    was there.  Senders serialise among themselves (the ``ActorReporter``'s lock); the
    actor only takes.
    """

    def __init__(self) -> None:
        self._items: collections.deque[Status] = collections.deque(maxlen=1)
        self._wake_armed = True
        # Statuses a newer one overwrote here (senders count), and how many of those the
        # actor has passed on to the metrics (the actor counts).
        self._replaced = 0
        self._replaced_told = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, status: Status) -> bool:
        """Store ``status``; whether the caller must send a wake-up (none is on its way)."""
        if self._items:
            self._replaced += 1
        self._items.append(status)
        if not self._wake_armed:
            return False
        self._wake_armed = False
        return True

    def take(self) -> Status | None:
        """The newest status, if any; re-arms the wake-up first so none is ever stranded."""
        self._wake_armed = True
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def replaced_since_asked(self) -> int:
        """How many statuses were overwritten here since the last call (the actor's, for metrics)."""
        replaced = self._replaced - self._replaced_told
        self._replaced_told += replaced
        return replaced

    def requeue(self, status: Status) -> bool:
        """Put back a status a dead actor held, unless a newer one already waits."""
        if self._items:
            return False
        self._items.appendleft(status)
        return True

    def peek(self) -> Status | None:
        """The waiting status without taking it."""
        return self._items[0] if self._items else None

    def expect_wake(self) -> None:
        """A wake-up is being sent by other means: senders need not send another."""
        self._wake_armed = False
