"""Kubernetes Events about a VirtualMCPServer, aggregated into series and rate limited.

The leader reports what happens (a phase change, a backend down, up, unauthenticated, a
new leader) as ``events.k8s.io/v1`` Events.  A flapping backend must not become a
thousand Events, nor a thousand API writes, so, like client-go's event recorder:

* **Series.**  Occurrences with the same :class:`SeriesKey` (regarding object, reason,
  type, note key, reporting controller) while the series is live are one Event: the
  first is a :class:`Create`, later ones a :class:`PatchSeries` of the same Event's
  ``series`` (``count``, ``lastObservedTime``).  A series ends when it has been idle for
  ``window`` (client-go ``tools/events``' ``finishTime``, 6 minutes) *and* the API server
  has its final count; the next occurrence starts a new Event.
* **Rate limit.**  Every write (Create or PatchSeries) takes a token from a bucket per
  key: burst 25, one token back every 5 minutes -- client-go's spam filter
  (``defaultSpamBurst = 25``, ``defaultSpamQPS = 1/300``).  An occurrence that finds no
  token is still counted; the effect is :class:`Drop` and the count reaches the server
  with the next write, from a later occurrence or from :func:`flush`.  So the count is
  exact while the writes stay bounded.

Where this differs from client-go on purpose:

* client-go's spam filter keys on source + involved object only.  Every Event here
  regards the same VirtualMCPServer, so one bucket would let a flapping backend starve
  ``LeaderElected`` and ``PhaseChanged``; the bucket is per series key instead.
* client-go drops a rate-limited occurrence entirely; here it is counted and written
  later, and a series does not end while the API server lacks its count.  The refill
  interval (5 min) is shorter than the window (6 min), so a new series always finds a
  token for its Create, and with :func:`flush` called at least every
  ``window - refill_interval`` a pending count is written before its window runs out.
* client-go forgets keys in LRU order (4096 entries), which hands a forgotten key a fresh
  burst.  Here a key is forgotten only when that changes nothing -- its series is over
  and written, and its bucket has refilled -- and a new key that finds all ``max_keys``
  slots busy is dropped (:attr:`DropReason.TOO_MANY_KEYS`) rather than weakening the
  limit of the others.

Pure: ``record(state, occurrence, now)`` and ``flush(state, now)`` return the next
immutable :class:`RecorderState` and what to write, :func:`answered` takes the API
server's answer back, :func:`next_flush_at` says when a pending count gets its token.
Event names are deterministic (a digest of the key plus a suffix the caller supplies).
Memory is bounded by ``max_keys``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

import attrs

from vmcp_actors.leadership.election import Now
from vmcp_actors.leadership.event_values import (
    _TOKEN_SLACK,
    DEFAULT_ACTIONS,
    DEFAULT_TYPES,
    MAX_KEYS,
    MAX_NOTE_BYTES,
    SERIES_WINDOW,
    SPAM_BURST,
    SPAM_REFILL_INTERVAL,
    Create,
    Drop,
    DropReason,
    Effect,
    EventFields,
    EventSeriesError,
    EventType,
    ObjectRef,
    Occurrence,
    PatchSeries,
    Reason,
    SeriesFields,
    SeriesKey,
    WriteOutcome,
    _truncate_utf8,
    event_name,
)

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_TYPES",
    "MAX_KEYS",
    "MAX_NOTE_BYTES",
    "SERIES_WINDOW",
    "SPAM_BURST",
    "SPAM_REFILL_INTERVAL",
    "Create",
    "Drop",
    "DropReason",
    "EventFields",
    "EventSeriesError",
    "EventType",
    "ObjectRef",
    "Occurrence",
    "PatchSeries",
    "Reason",
    "RecorderState",
    "SeriesEntry",
    "SeriesFields",
    "SeriesKey",
    "SeriesPolicy",
    "WriteOutcome",
    "answered",
    "event_name",
    "flush",
    "initial_recorder",
    "next_flush_at",
    "record",
]

# --------------------------------------------------------------------------- state


@attrs.frozen
class SeriesPolicy:
    """The numbers; defaults are client-go's, validated so no count can be lost."""

    window: float = SERIES_WINDOW
    burst: int = SPAM_BURST
    refill_interval: float = SPAM_REFILL_INTERVAL
    max_keys: int = MAX_KEYS

    def __attrs_post_init__(self) -> None:
        for field in ("window", "refill_interval"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise EventSeriesError(field, f"must be a finite number of seconds > 0, got {value!r}", value)
        for field in ("burst", "max_keys"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EventSeriesError(field, f"must be an integer >= 1, got {value!r}", value)
        if not self.refill_interval < self.window:
            raise EventSeriesError(
                "refill_interval",
                f"must be shorter than the window ({self.window}) so a new series always finds a token and a "
                f"pending count is written within the window, got {self.refill_interval}",
                self.refill_interval,
            )

    @property
    def max_flush_interval(self) -> float:
        """Call :func:`flush` at least this often so series end (and memory returns) on time.

        A count left pending gets its token at most ``refill_interval`` after the last
        write, and is then written within this interval: before the window runs out.
        """
        return self.window - self.refill_interval


@attrs.frozen
class SeriesEntry:
    """One key: its live series and its token bucket.

    ``written`` is the count last sent (0: must be rewritten); ``created`` says a Create
    for ``name`` was sent (or found the Event already there).  ``tokens`` is the
    bucket's level at local time ``tokens_at``.
    """

    key: SeriesKey
    template: EventFields
    count: int
    written: int
    created: bool
    last_observed: float
    last_observed_wall: datetime
    tokens: float
    tokens_at: float

    @property
    def name(self) -> str:
        """The Event's name."""
        return self.template.name

    @property
    def pending(self) -> bool:
        """The API server may lack this series' latest count."""
        return not self.created or self.written < self.count


@attrs.frozen
class RecorderState:
    """All remembered keys; never mutated (each rule builds a new mapping)."""

    policy: SeriesPolicy = attrs.field(factory=SeriesPolicy)
    entries: Mapping[SeriesKey, SeriesEntry] = attrs.field(factory=dict)


def initial_recorder(policy: SeriesPolicy | None = None) -> RecorderState:
    """A recorder that remembers nothing yet."""
    return RecorderState(policy=policy or SeriesPolicy())


# --------------------------------------------------------------------------- rules


def record(state: RecorderState, occurrence: Occurrence, now: Now) -> tuple[RecorderState, Effect]:
    """Count ``occurrence`` and say what to write now, if anything."""
    policy = state.policy
    t = now.monotonic
    key = occurrence.key
    entries = _without_forgettable(state.entries, policy, t)
    entry = entries.get(key)
    if entry is None:
        if len(entries) >= policy.max_keys:
            return RecorderState(policy, entries), Drop(DropReason.TOO_MANY_KEYS, key)
        entry = _new_series(occurrence, key, now, tokens=float(policy.burst), tokens_at=t)
    elif _series_over(entry, policy, t):
        # Same key after a quiet window: a new Event, but the same bucket.
        entry = _new_series(occurrence, key, now, tokens=entry.tokens, tokens_at=entry.tokens_at)
    else:
        entry = attrs.evolve(entry, count=entry.count + 1, last_observed=t, last_observed_wall=now.wall)
    entry, effect = _try_write(entry, policy, t)
    entries = {**entries, key: entry}
    if effect is None:
        return RecorderState(policy, entries), Drop(DropReason.RATE_LIMITED, key, entry.count - entry.written)
    return RecorderState(policy, entries), effect


def flush(state: RecorderState, now: Now) -> tuple[RecorderState, tuple[Create | PatchSeries, ...]]:
    """Write every pending count that has a token; forget what is safe to forget.

    Call it when :func:`next_flush_at` says, and at least every
    ``policy.max_flush_interval`` so series end (and memory is returned) on time.
    """
    policy = state.policy
    t = now.monotonic
    entries = dict(_without_forgettable(state.entries, policy, t))
    effects: list[Create | PatchSeries] = []
    for key, entry in list(entries.items()):
        if not entry.pending:
            continue
        written, effect = _try_write(entry, policy, t)
        if effect is not None:
            entries[key] = written
            effects.append(effect)
    return RecorderState(policy, entries), tuple(effects)


def next_flush_at(state: RecorderState) -> float | None:
    """The local time at which the first pending count gets a token (None: nothing pending)."""
    policy = state.policy
    due = [
        entry.tokens_at + max(0.0, 1.0 - entry.tokens) * policy.refill_interval
        for entry in state.entries.values()
        if entry.pending
    ]
    return min(due) if due else None


def answered(state: RecorderState, name: str, outcome: WriteOutcome) -> RecorderState:
    """Record how the API server answered a write for Event ``name``.

    Writes are marked done when they are emitted, so success changes nothing; otherwise
    the series is written again by a later :func:`flush` (counts are absolute, so
    repeating is harmless).  An answer for a series already forgotten is ignored.
    """
    if outcome is WriteOutcome.SUCCEEDED:
        return state
    if outcome is WriteOutcome.NOT_FOUND:
        return _mark(state, name, lambda entry: attrs.evolve(entry, created=False, written=0))
    if outcome is WriteOutcome.ALREADY_EXISTS:
        # The Event holds at least its first occurrence; a series count needs a patch.
        return _mark(state, name, lambda entry: attrs.evolve(entry, created=True, written=1))
    return _mark(state, name, lambda entry: attrs.evolve(entry, written=0))


# --------------------------------------------------------------------------- helpers


def _mark(state: RecorderState, name: str, change: Callable[[SeriesEntry], SeriesEntry]) -> RecorderState:
    entries = dict(state.entries)
    for key, entry in entries.items():
        if entry.name == name:
            entries[key] = change(entry)
            return RecorderState(state.policy, entries)
    return state  # already forgotten: nothing left to repair


def _new_series(occurrence: Occurrence, key: SeriesKey, now: Now, tokens: float, tokens_at: float) -> SeriesEntry:
    template = EventFields(
        name=event_name(key, occurrence.name_suffix),
        namespace=occurrence.regarding.namespace,
        regarding=occurrence.regarding,
        reason=occurrence.reason,
        type=occurrence.event_type,
        action=occurrence.event_action,
        note=_truncate_utf8(occurrence.note, MAX_NOTE_BYTES),
        reporting_controller=occurrence.reporting_controller,
        reporting_instance=occurrence.reporting_instance,
        event_time=now.wall,
    )
    return SeriesEntry(
        key=key,
        template=template,
        count=1,
        written=0,
        created=False,
        last_observed=now.monotonic,
        last_observed_wall=now.wall,
        tokens=tokens,
        tokens_at=tokens_at,
    )


def _tokens(entry: SeriesEntry, policy: SeriesPolicy, t: float) -> float:
    refilled = entry.tokens + max(0.0, t - entry.tokens_at) / policy.refill_interval
    return min(float(policy.burst), refilled)


def _try_write(entry: SeriesEntry, policy: SeriesPolicy, t: float) -> tuple[SeriesEntry, Create | PatchSeries | None]:
    """Take a token and write the whole series so far; None if the bucket is empty."""
    tokens = _tokens(entry, policy, t)
    if tokens < 1.0 - _TOKEN_SLACK:
        return entry, None
    series = SeriesFields(entry.count, entry.last_observed_wall) if entry.count > 1 else None
    effect: Create | PatchSeries
    if entry.created and series is not None:
        effect = PatchSeries(entry.name, entry.template.namespace, entry.count, entry.last_observed_wall)
    else:
        effect = Create(attrs.evolve(entry.template, series=series))
    written = attrs.evolve(entry, written=entry.count, created=True, tokens=max(tokens - 1.0, 0.0), tokens_at=t)
    return written, effect


def _series_over(entry: SeriesEntry, policy: SeriesPolicy, t: float) -> bool:
    return not entry.pending and t - entry.last_observed >= policy.window


def _forgettable(entry: SeriesEntry, policy: SeriesPolicy, t: float) -> bool:
    """Forgetting changes nothing: the series is over and its bucket is full again."""
    return _series_over(entry, policy, t) and _tokens(entry, policy, t) >= policy.burst


def _without_forgettable(
    entries: Mapping[SeriesKey, SeriesEntry], policy: SeriesPolicy, t: float
) -> Mapping[SeriesKey, SeriesEntry]:
    if not any(_forgettable(entry, policy, t) for entry in entries.values()):
        return entries
    return {key: entry for key, entry in entries.items() if not _forgettable(entry, policy, t)}
