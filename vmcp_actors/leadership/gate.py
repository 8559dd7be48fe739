"""The one question a status sink asks before every write: does this replica lead now?

Only the leader may write a VirtualMCPServer's status and Events.  The elector actor
publishes its latest :class:`~vmcp_actors.leadership.election.ElectorState` here (one
reference assignment of a frozen value, so readers on other threads never see half an
update and nothing needs a lock); a sink reads it and asks
:func:`~vmcp_actors.leadership.election.is_leading` with *its own* reading of the
monotonic clock.  So leadership ends at the renew deadline even when the elector's
thread is late or wedged: a replica that cannot renew stops writing on time, whatever
its actors are doing.

``term`` counts the times this replica started leading.  A sink that sees a new term
must distrust whatever it cached about the object, because another leader may have
written it in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from vmcp_actors.leadership.election import ElectorState, is_leading, observed_leader

__all__ = ["ElectionGate", "GateView", "LeadershipGate"]


class LeadershipGate(Protocol):
    """What a sink needs from leader election: whether (and in which term) it may write."""

    def is_leading(self, now: float | None = None) -> bool:
        """Whether this replica may write at monotonic time ``now`` (default: the gate's clock)."""
        ...

    def leading_term(self, now: float | None = None) -> int | None:
        """The current leadership term if this replica leads at ``now``, else ``None``."""
        ...


@attrs.frozen
class GateView:
    """What the elector published last: its state and the term it is in (or last was)."""

    state: ElectorState | None = None
    term: int = 0


class ElectionGate:
    """A :class:`LeadershipGate` fed by the elector actor; read from any thread.

    ``monotonic`` must be the clock the elector stamps its messages with, since the
    published state's deadlines are times on that clock.
    """

    __slots__ = ("_monotonic", "_view")

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._view = GateView()

    def publish(self, state: ElectorState, term: int) -> None:
        """Replace the published view (the elector actor's thread only)."""
        self._view = GateView(state, term)

    def close(self) -> None:
        """Leading is over for good (the elector stopped, or was killed); keeps the term."""
        self._view = GateView(None, self._view.term)

    @property
    def view(self) -> GateView:
        """The latest published view."""
        return self._view

    def is_leading(self, now: float | None = None) -> bool:
        """See :class:`LeadershipGate`."""
        return self.leading_term(now) is not None

    def leading_term(self, now: float | None = None) -> int | None:
        """See :class:`LeadershipGate`; one read of the view, so state and term agree."""
        view = self._view
        if view.state is None:
            return None
        t = self._monotonic() if now is None else now
        return view.term if is_leading(view.state, t) else None

    @property
    def observed_leader(self) -> str | None:
        """The holder named by the last Lease the elector saw (None: none, or unknown)."""
        state = self._view.state
        return None if state is None else observed_leader(state)
