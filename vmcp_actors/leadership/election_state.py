"""What one replica knows about the election, and the questions asked of that knowledge.

:class:`ElectorState` is both what :func:`~vmcp_actors.leadership.election.transition`
threads through and the read-only snapshot the elector publishes: the gate asks
:func:`is_leading` of it before every status write, from other threads, with its own
reading of the clock.  The state and these queries are the part every reader relies
on; the transitions that produce it stay in :mod:`~vmcp_actors.leadership.election`,
which re-exports everything here so callers keep one import path.
"""

from __future__ import annotations

import enum
import math

import attrs

from vmcp_actors.leadership.election_config import LeaderElectionConfig
from vmcp_actors.leadership.lease import LeaseRecord

__all__ = [
    "ElectorState",
    "PendingWrite",
    "Phase",
    "WriteKind",
    "finished",
    "initial_state",
    "is_leading",
    "lease_expires_at",
    "observed_leader",
]


class Phase(enum.StrEnum):
    """What the elector is doing."""

    CANDIDATE = "candidate"  # not leading; acquires when the Lease is free
    LEADER = "leader"  # acquired; renews every retry period (is_leading also checks the deadline)
    RELEASING = "releasing"  # stop requested; releases the Lease if it holds it, never acquires again
    STOPPED = "stopped"  # done: no more effects


class WriteKind(enum.StrEnum):
    """Which write is in flight: they differ in what their success means."""

    CREATE = "create"
    UPDATE = "update"
    RELEASE = "release"


@attrs.frozen
class PendingWrite:
    """The one write in flight: its attempt id, what it writes, when it was sent (local)."""

    attempt: int
    kind: WriteKind
    record: LeaseRecord
    sent_at: float


@attrs.frozen
class ElectorState:
    """Everything one replica knows about the election; also its read-only snapshot.

    ``record``/``resource_version`` are the last version of the Lease seen, ``observed_at``
    the local time it was first seen (the start of its lease as far as we can tell), and
    ``stale`` says the view is known to be outdated (start, conflict, failure, timeout),
    so the rules read the Lease before writing again.  ``renewed_at`` is the local time at
    which our last *acknowledged* write was sent.
    """

    config: LeaderElectionConfig
    phase: Phase = Phase.CANDIDATE
    record: LeaseRecord | None = None
    resource_version: str | None = None
    observed_at: float | None = None
    stale: bool = True
    renewed_at: float | None = None
    next_renew_at: float = -math.inf
    next_poll_at: float = -math.inf
    write: PendingWrite | None = None
    attempt: int = 0

    @property
    def holds_lease(self) -> bool:
        """Our last view of the Lease names us as holder."""
        return self.record is not None and self.record.holder_identity == self.config.identity


def initial_state(config: LeaderElectionConfig) -> ElectorState:
    """A candidate that knows nothing yet; its first Tick reads the Lease."""
    return ElectorState(config=config)


def is_leading(state: ElectorState, now: float) -> bool:
    """Whether this replica may act as leader at local monotonic time ``now``.

    Ask this before every guarded write, not only the callbacks: it turns false at the
    renew deadline even if no Tick arrives in time.
    """
    return (
        state.phase is Phase.LEADER
        and state.renewed_at is not None
        and now < state.renewed_at + state.config.renew_deadline
    )


def observed_leader(state: ElectorState) -> str | None:
    """The holder named by the last Lease seen (None when absent or released)."""
    if state.record is None or state.record.released:
        return None
    return state.record.holder_identity


def finished(state: ElectorState) -> bool:
    """After ReleaseRequested: the release is done (or there was nothing to release)."""
    return state.phase is Phase.STOPPED


def lease_expires_at(state: ElectorState) -> float | None:
    """Local time from which the observed Lease may be taken over (None: no timed lease)."""
    if state.record is None or state.observed_at is None or state.record.released:
        return None
    return state.observed_at + max(state.record.lease_duration_seconds, 0)
