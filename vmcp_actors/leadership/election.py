"""Leader election over one ``coordination.k8s.io/v1`` Lease, as pure rules.

Several replicas of the runtime may watch the same VirtualMCPServer; only one may write
its status.  They agree through one Lease per server, ``<vmcp-name>-vmcp-status``, with
client-go's ``leaderelection`` semantics and defaults (lease duration 15 s, renew
deadline 10 s, retry period 2 s, jitter factor 1.2, ``ReleaseOnCancel``).

``transition(state, message)`` returns the next immutable :class:`ElectorState` (defined,
with the queries on it such as :func:`is_leading`, in
:mod:`~vmcp_actors.leadership.election_state`) and the effects a thin actor must perform
(read or write the Lease, call the leadership callbacks, schedule the next
:class:`Tick`), in order.  Nothing here does I/O, reads a
clock or starts a thread: time arrives inside each message as :class:`Now`, so every
rule is checked by hypothesis against a simulated API server with skewed clocks.

Why it is safe (the invariant the tests check):

* **Only local durations are compared.**  A candidate judges a lease expired when
  ``leaseDurationSeconds`` have passed *on its own monotonic clock* since it first saw
  the current version of the Lease (``observed_at``).  The remote ``renewTime`` is never
  compared with the local clock, so clock *offsets* between nodes do not matter at all.
* **The leader stops first.**  :func:`is_leading` is true only until ``renew_deadline``
  after the moment the last acknowledged renewal was *sent*.  Any other replica saw that
  renewal no earlier than it was sent, and waits ``lease_duration`` from then.  With
  clock *rates* within ``±drift`` of real time, the leader is done after at most
  ``renew_deadline / (1 - drift)`` real seconds and a rival may start after at least
  ``lease_duration / (1 + drift)``; :attr:`LeaderElectionConfig.tolerated_clock_drift`
  is the largest drift for which the first is shorter (20 % for the defaults).
* **Every write is a compare-and-swap** on the Lease's ``resourceVersion``, so a replica
  acting on an outdated view fails with a conflict instead of overwriting a newer holder.

Where this differs from client-go on purpose:

* The renew deadline counts from when the last successful renewal was *sent*, not from
  when its answer arrived, so a slow answer cannot stretch leadership past what the other
  replicas saw.
* A candidate wakes exactly when the lease it watches expires (not at the next poll), and
  an observed release (empty holder) lets it try at once.
* A leader that observes another holder, or a deleted Lease, stops leading at once
  instead of waiting for its renew deadline.
* ``observed_at`` restarts whenever the ``resourceVersion`` changes (client-go compares
  the record's bytes), so a renewal that happens to write identical bytes still counts
  as a sign of life.
* Release happens whenever this replica's last view says it holds the Lease (as
  client-go's ``release`` checks ``IsLeader``), guarded by the compare-and-swap; a
  release that loses a race with our own renewal is retried until the Lease is released
  or held by someone else.
"""

from __future__ import annotations

import math

import attrs

from vmcp_actors.leadership.election_config import (
    JITTER_FACTOR,
    LEASE_DURATION,
    LEASE_NAME_SUFFIX,
    RELEASED_LEASE_DURATION_SECONDS,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElectionConfig,
    LeaderElectionConfigError,
    holder_identity,
    identity_base,
    lease_name,
)
from vmcp_actors.leadership.election_messages import (
    Create,
    Effect,
    Get,
    LeaseObserved,
    Message,
    Release,
    ReleaseRequested,
    ScheduleTick,
    StartedLeading,
    StoppedLeading,
    Tick,
    Update,
    WriteConflicted,
    WriteFailed,
    WriteSucceeded,
)
from vmcp_actors.leadership.election_state import (
    ElectorState,
    PendingWrite,
    Phase,
    WriteKind,
    finished,
    initial_state,
    is_leading,
    lease_expires_at,
    observed_leader,
)
from vmcp_actors.leadership.lease import LeaseRecord, Now

__all__ = [
    "JITTER_FACTOR",
    "LEASE_DURATION",
    "LEASE_NAME_SUFFIX",
    "RELEASED_LEASE_DURATION_SECONDS",
    "RENEW_DEADLINE",
    "RETRY_PERIOD",
    "Create",
    "Effect",
    "ElectorState",
    "Get",
    "LeaderElectionConfig",
    "LeaderElectionConfigError",
    "LeaseObserved",
    "LeaseRecord",
    "Message",
    "Now",
    "PendingWrite",
    "Phase",
    "Release",
    "ReleaseRequested",
    "ScheduleTick",
    "StartedLeading",
    "StoppedLeading",
    "Tick",
    "Update",
    "WriteConflicted",
    "WriteFailed",
    "WriteKind",
    "WriteSucceeded",
    "finished",
    "holder_identity",
    "identity_base",
    "initial_state",
    "is_leading",
    "lease_expires_at",
    "lease_name",
    "observed_leader",
    "transition",
]


# --------------------------------------------------------------------------- transitions

_Result = tuple[ElectorState, tuple[Effect, ...]]


def transition(state: ElectorState, message: Message) -> _Result:
    """The next state and the effects to perform, in order.

    Every handled message ends with one :class:`ScheduleTick` (the next moment the rules
    need a Tick) unless the elector has stopped; a message that changes nothing (a result
    of an overtaken write, anything after the stop) returns the state unchanged and no
    effects, so the previously scheduled Tick stays valid.
    """
    if state.phase is Phase.STOPPED:
        return state, ()
    if isinstance(message, Tick):
        return _settle(state, message.now, ())
    if isinstance(message, LeaseObserved):
        return _observed(state, message)
    if isinstance(message, WriteSucceeded):
        return _write_succeeded(state, message)
    if isinstance(message, WriteConflicted):
        if state.write is None or message.attempt != state.write.attempt:
            return state, ()
        # Our view is outdated: read at once, and write again as soon as the answer allows.
        now = message.now
        return _settle(attrs.evolve(state, write=None, stale=True, next_poll_at=now.monotonic), now, ())
    if isinstance(message, WriteFailed):
        if state.write is None or message.attempt != state.write.attempt:
            return state, ()
        return _settle(_after_failure(state, message.now), message.now, ())
    return _release_requested(state, message)


def _after_failure(state: ElectorState, now: Now) -> ElectorState:
    """A failed write may still have landed: look again after a retry period, then decide."""
    return attrs.evolve(state, write=None, stale=True, next_poll_at=now.monotonic + _poll_delay(state, now))


def _abandon_overdue_write(state: ElectorState, now: Now) -> ElectorState:
    """A write unanswered for ``request_timeout`` is given up and the Lease read at once.

    The timeout already spaced this attempt from the last one, so there is no reason to
    wait a retry period more; a late answer to the abandoned write is ignored.
    """
    write = state.write
    if write is None or now.monotonic < write.sent_at + state.config.request_timeout:
        return state
    return attrs.evolve(state, write=None, stale=True, next_poll_at=now.monotonic)


def _poll_delay(state: ElectorState, now: Now) -> float:
    """Candidates poll with client-go's jitter; a leader retries on the plain retry period."""
    if state.phase is Phase.LEADER:
        return state.config.retry_period
    return state.config.poll_interval(now.draw)


def _observed(state: ElectorState, message: LeaseObserved) -> _Result:
    now = message.now
    changed = state.observed_at is None or (message.record, message.resource_version) != (
        state.record,
        state.resource_version,
    )
    state = attrs.evolve(
        state,
        record=message.record,
        resource_version=message.resource_version,
        observed_at=now.monotonic if changed else state.observed_at,
        stale=False,
        # The server answered; with a watch running there is no need to poll again soon.
        next_poll_at=now.monotonic + _poll_delay(state, now),
    )
    effects: tuple[Effect, ...] = ()
    if state.phase is Phase.LEADER and not state.holds_lease:
        # Someone else holds (or deleted) the Lease.  Stepping down is always safe; a stale
        # observation only costs a re-acquire, since the Lease still names us.
        state = attrs.evolve(state, phase=Phase.CANDIDATE, renewed_at=None)
        effects = (StoppedLeading(),)
    return _settle(state, now, effects)


def _write_succeeded(state: ElectorState, message: WriteSucceeded) -> _Result:
    write = state.write
    if write is None or message.attempt != write.attempt:
        return state, ()  # an abandoned write that landed after all; the next read shows it
    now = message.now
    state = attrs.evolve(
        state,
        write=None,
        record=message.record,
        resource_version=message.resource_version,
        observed_at=now.monotonic,
        stale=False,
    )
    if write.kind is WriteKind.RELEASE:
        return attrs.evolve(state, phase=Phase.STOPPED), ()
    if state.phase is Phase.RELEASING:
        return _settle(state, now, ())  # an acquire or renewal that landed after the stop: release it
    state = attrs.evolve(state, renewed_at=write.sent_at, next_renew_at=now.monotonic + state.config.retry_period)
    effects: tuple[Effect, ...] = ()
    if state.phase is Phase.CANDIDATE and now.monotonic < write.sent_at + state.config.renew_deadline:
        state = attrs.evolve(state, phase=Phase.LEADER)
        effects = (StartedLeading(),)
    # An answer so late that the deadline already passed makes no leader; _settle steps a
    # leader down and lets a candidate renew its own Lease at once.
    return _settle(state, now, effects)


def _release_requested(state: ElectorState, message: ReleaseRequested) -> _Result:
    if state.phase is Phase.RELEASING:
        return state, ()
    now = message.now
    effects: tuple[Effect, ...] = (StoppedLeading(),) if state.phase is Phase.LEADER else ()
    state = attrs.evolve(state, phase=Phase.RELEASING, renewed_at=None, next_renew_at=-math.inf)
    if state.stale:
        state = attrs.evolve(state, next_poll_at=now.monotonic)  # shutting down: read now, not at the next poll
    if state.attempt == 0:
        return attrs.evolve(state, phase=Phase.STOPPED), effects  # never wrote: cannot hold the Lease
    return _settle(state, now, effects)


def _settle(state: ElectorState, now: Now, effects: tuple[Effect, ...]) -> _Result:
    """Act on the current view at ``now``: step down, write, poll; then schedule a Tick."""
    t = now.monotonic
    out = list(effects)
    state = _abandon_overdue_write(state, now)
    if state.phase is Phase.LEADER and not is_leading(state, t):
        state = attrs.evolve(state, phase=Phase.CANDIDATE, renewed_at=None)
        out.append(StoppedLeading())
    if state.write is None and not state.stale:
        state, write = _maybe_write(state, now)
        if write is not None:
            out.append(write)
        if state.phase is Phase.STOPPED:
            return state, tuple(out)
    if state.write is None and (state.stale or state.phase is Phase.CANDIDATE) and t >= state.next_poll_at:
        state = attrs.evolve(state, next_poll_at=t + _poll_delay(state, now))
        out.append(Get())
    out.append(ScheduleTick(_wake_up_at(state, t)))
    return state, tuple(out)


def _maybe_write(state: ElectorState, now: Now) -> tuple[ElectorState, Effect | None]:
    """The write the current (fresh) view calls for, if any."""
    t = now.monotonic
    if state.phase is Phase.RELEASING:
        if not state.holds_lease:
            return attrs.evolve(state, phase=Phase.STOPPED), None  # nothing of ours to release
        assert state.record is not None
        assert state.resource_version is not None
        released = LeaseRecord(
            holder_identity="",
            lease_duration_seconds=RELEASED_LEASE_DURATION_SECONDS,
            acquire_time=now.wall,
            renew_time=now.wall,
            lease_transitions=state.record.lease_transitions,
        )
        return _send(state, WriteKind.RELEASE, released, t)
    if state.phase is Phase.LEADER:
        if t < state.next_renew_at:
            return state, None
        return _send(state, WriteKind.UPDATE, _claim(state, now), t)
    if not _acquirable(state, t):
        return state, None
    kind = WriteKind.CREATE if state.record is None else WriteKind.UPDATE
    return _send(state, kind, _claim(state, now), t)


def _acquirable(state: ElectorState, t: float) -> bool:
    """Absent, released, ours, or expired by our own clock."""
    if state.record is None or state.record.released or state.holds_lease:
        return True
    expires = lease_expires_at(state)
    return expires is not None and t >= expires


def _claim(state: ElectorState, now: Now) -> LeaseRecord:
    """The record that makes (or keeps) us the holder; transitions count holder changes."""
    previous = state.record
    cfg = state.config
    if previous is None:
        return LeaseRecord(cfg.identity, cfg.lease_duration_seconds, now.wall, now.wall, 0)
    if state.holds_lease:
        return LeaseRecord(
            cfg.identity,
            cfg.lease_duration_seconds,
            previous.acquire_time or now.wall,
            now.wall,
            previous.lease_transitions,
        )
    return LeaseRecord(cfg.identity, cfg.lease_duration_seconds, now.wall, now.wall, previous.lease_transitions + 1)


def _send(state: ElectorState, kind: WriteKind, record: LeaseRecord, t: float) -> tuple[ElectorState, Effect]:
    attempt = state.attempt + 1
    state = attrs.evolve(state, attempt=attempt, write=PendingWrite(attempt, kind, record, t))
    if kind is WriteKind.CREATE:
        return state, Create(attempt, record)
    assert state.resource_version is not None  # a fresh view of an existing Lease has one
    if kind is WriteKind.RELEASE:
        return state, Release(attempt, record, state.resource_version)
    return state, Update(attempt, record, state.resource_version)


def _wake_up_at(state: ElectorState, t: float) -> float:
    """The earliest local time at which a Tick could change anything."""
    cfg = state.config
    times: list[float] = []
    if state.phase is Phase.LEADER and state.renewed_at is not None:
        times.append(state.renewed_at + cfg.renew_deadline)
    if state.write is not None:
        times.append(state.write.sent_at + cfg.request_timeout)
    else:
        if state.stale or state.phase is Phase.CANDIDATE:
            times.append(state.next_poll_at)
        if not state.stale and state.phase is Phase.LEADER:
            times.append(state.next_renew_at)
        expires = lease_expires_at(state)
        if not state.stale and state.phase is Phase.CANDIDATE and expires is not None and expires > t:
            times.append(expires)
    return min(times)
