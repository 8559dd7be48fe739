"""What the election rules are told (messages) and what they ask for (effects)."""

from __future__ import annotations

import attrs

from vmcp_actors.leadership.lease import LeaseRecord, Now

# --------------------------------------------------------------------------- messages


@attrs.frozen
class Tick:
    """Time passed: check deadlines, expiry, timeouts and polls."""

    now: Now


@attrs.frozen
class LeaseObserved:
    """The Lease as a GET or a watch event showed it; ``record is None`` means absent."""

    record: LeaseRecord | None
    resource_version: str | None
    now: Now


@attrs.frozen
class WriteSucceeded:
    """Write ``attempt`` was accepted; ``record`` and ``resource_version`` are what was stored."""

    attempt: int
    record: LeaseRecord
    resource_version: str
    now: Now


@attrs.frozen
class WriteConflicted:
    """Write ``attempt`` lost the compare-and-swap (409 Conflict, or AlreadyExists on create)."""

    attempt: int
    now: Now


@attrs.frozen
class WriteFailed:
    """Write ``attempt`` failed otherwise (timeout, 5xx, network); it may still have landed."""

    attempt: int
    now: Now
    reason: str = ""


@attrs.frozen
class ReleaseRequested:
    """Graceful stop: stop leading, release the Lease if we hold it, never acquire again."""

    now: Now


Message = Tick | LeaseObserved | WriteSucceeded | WriteConflicted | WriteFailed | ReleaseRequested


# --------------------------------------------------------------------------- effects


@attrs.frozen
class Get:
    """Read the Lease; answer with LeaseObserved (record None on 404), or nothing on error."""


@attrs.frozen
class Create:
    """Create the Lease with ``record``; answer WriteSucceeded/Conflicted/Failed(attempt)."""

    attempt: int
    record: LeaseRecord


@attrs.frozen
class Update:
    """Replace the Lease's spec with ``record`` if its resourceVersion is still the expected one."""

    attempt: int
    record: LeaseRecord
    expected_resource_version: str


@attrs.frozen
class Release:
    """An :class:`Update` that gives the Lease up (holder cleared, duration 1 s).

    Always preceded by :class:`StoppedLeading` when this replica was leading: whatever
    the leader guards must stop before the release request goes out.
    """

    attempt: int
    record: LeaseRecord
    expected_resource_version: str


@attrs.frozen
class StartedLeading:
    """This replica now leads (client-go ``OnStartedLeading``)."""


@attrs.frozen
class StoppedLeading:
    """This replica no longer leads (client-go ``OnStoppedLeading``); stop writing now."""


@attrs.frozen
class ScheduleTick:
    """Deliver ``Tick`` when the local monotonic clock reaches ``at``; replaces any earlier request."""

    at: float


Effect = Get | Create | Update | Release | StartedLeading | StoppedLeading | ScheduleTick
