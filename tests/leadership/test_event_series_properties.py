"""Event series aggregation against a simulated API server: exact counts, bounded writes.

Random streams of occurrences (a few keys, repeats close together and far apart) are
recorded; every write goes to a reference store of Events that sometimes fails, fails
after applying, or expires an Event (``--event-ttl``).  The shell's duties are played by
the test: answer every write, and call ``flush`` as the policy asks.  Checked:

* **Counts are exact**: once everything is flushed, every Event's count is the number of
  occurrences recorded into its series (no occurrence lost, none counted twice).
* **Writes are bounded** per key by the token bucket: within any interval of length
  ``d``, at most ``burst + d / refill_interval`` writes; a flapping key is one Event.
* **Memory is bounded**: never more than ``max_keys`` entries, and a quiet recorder
  forgets everything once forgetting changes nothing.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.leadership.election import Now
from vmcp_actors.leadership.event_series import (
    MAX_NOTE_BYTES,
    SERIES_WINDOW,
    SPAM_BURST,
    SPAM_REFILL_INTERVAL,
    Create,
    Drop,
    DropReason,
    EventSeriesError,
    EventType,
    ObjectRef,
    Occurrence,
    PatchSeries,
    Reason,
    RecorderState,
    SeriesKey,
    SeriesPolicy,
    WriteOutcome,
    answered,
    event_name,
    flush,
    initial_recorder,
    next_flush_at,
    record,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EPSILON = 1e-6
VMCP = ObjectRef("toolhive.stacklok.dev/v1alpha1", "VirtualMCPServer", "demo", "team-a", "uid-1")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def at(t: float) -> Now:
    return Now(t, T0 + timedelta(seconds=t))


def occurrence(reason: Reason = Reason.BACKEND_UNAVAILABLE, backend: str = "github", suffix: str = "a1") -> Occurrence:
    return Occurrence(
        regarding=VMCP,
        reason=reason,
        note=f"backend {backend}: connection refused",
        note_key=backend,
        reporting_controller="toolhive.stacklok.dev/vmcp-actors",
        reporting_instance="vmcp-7f9c-abcde_3f2a",
        name_suffix=suffix,
    )


# --------------------------------------------------------------------------- the simulated API server


class EventStore:
    """Events by name, with their count; writes can fail, fail after applying, or expire."""

    def __init__(self, rng: random.Random, faults: bool) -> None:
        self.rng = rng
        self.faults = faults
        self.counts: dict[str, int] = {}
        self.expired: set[str] = set()  # gone by TTL and not written since
        self.writes: dict[SeriesKey, list[float]] = defaultdict(list)
        self.creates: Counter[SeriesKey] = Counter()
        self.patched: dict[str, int] = {}

    def apply(self, effect: Create | PatchSeries, key: SeriesKey, t: float) -> WriteOutcome:
        self.writes[key].append(t)
        fate = self.rng.random() if self.faults else 1.0
        if fate < 0.1:
            return WriteOutcome.FAILED  # never arrived
        if fate < 0.15 and self.counts:
            gone = self.rng.choice(sorted(self.counts))  # the TTL removes some Event
            del self.counts[gone]
            self.expired.add(gone)
        if isinstance(effect, Create):
            self.creates[key] += 1
            event = effect.event
            assert DNS_SUBDOMAIN.fullmatch(event.name)
            assert len(event.name) <= 253
            assert event.namespace == event.regarding.namespace
            assert len(event.note.encode()) <= MAX_NOTE_BYTES
            if event.name in self.counts:
                return WriteOutcome.ALREADY_EXISTS
            if event.series is not None:
                assert event.series.count >= 2  # events.k8s.io/v1 validation
            self.counts[event.name] = event.series.count if event.series else 1
            self.expired.discard(event.name)
        else:
            assert effect.count >= 2
            if effect.name not in self.counts:
                return WriteOutcome.NOT_FOUND
            assert effect.count >= self.patched.get(effect.name, 0), "a patch lowered the count"
            self.patched[effect.name] = effect.count
            self.counts[effect.name] = effect.count
        if self.faults and self.rng.random() < 0.1:
            return WriteOutcome.FAILED  # applied, but the answer was lost
        return WriteOutcome.SUCCEEDED


class Recorder:
    """The shell: records, writes, answers, flushes at least as often as the policy asks."""

    def __init__(self, policy: SeriesPolicy, seed: int, faults: bool) -> None:
        self.state: RecorderState = initial_recorder(policy)
        self.store = EventStore(random.Random(seed), faults)
        self.expected: Counter[str] = Counter()  # occurrences recorded into each Event
        self.dropped_keys = 0
        self.t = 0.0
        self.last_flush = 0.0

    def key_of(self, effect: Create | PatchSeries) -> SeriesKey:
        name = effect.event.name if isinstance(effect, Create) else effect.name
        (key,) = [k for k, entry in self.state.entries.items() if entry.name == name]
        return key

    def write(self, effect: Create | PatchSeries) -> None:
        name = effect.event.name if isinstance(effect, Create) else effect.name
        outcome = self.store.apply(effect, self.key_of(effect), self.t)
        self.state = answered(self.state, name, outcome)

    def advance(self, seconds: float) -> None:
        """Let time pass, flushing when a token is due and at least every max_flush_interval."""
        end = self.t + seconds
        while True:
            due = next_flush_at(self.state)
            periodic = self.last_flush + self.state.policy.max_flush_interval
            nxt = min(periodic, due) if due is not None else periodic
            if nxt > end:
                break
            self.t = max(self.t, nxt)
            self.flush()
        self.t = end

    def flush(self) -> None:
        self.state, effects = flush(self.state, at(self.t))
        self.last_flush = self.t
        for effect in effects:
            self.write(effect)
        self.check_memory()

    def record(self, occ: Occurrence) -> Drop | Create | PatchSeries:
        self.state, effect = record(self.state, occ, at(self.t))
        if isinstance(effect, Drop) and effect.reason is DropReason.TOO_MANY_KEYS:
            self.dropped_keys += 1
            assert occ.key not in self.state.entries
        else:
            self.expected[self.state.entries[occ.key].name] += 1
            if not isinstance(effect, Drop):
                self.write(effect)
        self.check_memory()
        return effect

    def check_memory(self) -> None:
        assert len(self.state.entries) <= self.state.policy.max_keys

    def drain(self) -> None:
        """Flush until nothing is pending (the bucket refills one token per interval)."""
        for _ in range(10_000):
            if next_flush_at(self.state) is None:
                return
            self.advance(self.state.policy.refill_interval)
        raise AssertionError("pending writes never drained")


def check_counts_exact(rec: Recorder) -> None:
    for name, expected in rec.expected.items():
        if name in rec.store.expired:
            continue  # expired by the TTL after its last write: nothing left to compare
        assert rec.store.counts.get(name) == expected, f"{name}: {rec.store.counts.get(name)} != {expected}"


def check_writes_bounded(rec: Recorder) -> None:
    policy = rec.state.policy
    for times in rec.store.writes.values():
        ordered = sorted(times)
        for first in range(len(ordered)):
            for last in range(first, len(ordered)):
                window = ordered[last] - ordered[first]
                assert last - first + 1 <= policy.burst + window / policy.refill_interval + EPSILON


# --------------------------------------------------------------------------- properties

small_policies = st.builds(
    SeriesPolicy,
    window=st.sampled_from([60.0, SERIES_WINDOW]),
    burst=st.integers(1, 6),
    refill_interval=st.sampled_from([10.0, 45.0]),
    max_keys=st.integers(1, 4),
)
# Most occurrences hit one key (a flapping backend), the rest spread over all reasons.
steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 3.0, 20.0, 90.0, 400.0]),  # time before the occurrence
        st.sampled_from([Reason.BACKEND_UNAVAILABLE] * 4 + list(Reason)),
        st.sampled_from(["github"] * 3 + ["jira", "slack"]),
    ),
    min_size=1,
    max_size=80,
)


def play(policy: SeriesPolicy, plan: list[tuple[float, Reason, str]], seed: int, faults: bool) -> Recorder:
    rec = Recorder(policy, seed, faults)
    for index, (pause, reason, backend) in enumerate(plan):
        rec.advance(pause)
        # Unique per occurrence, as the wall time in nanoseconds is in production.
        rec.record(occurrence(reason, backend, format(index, "x")))
    rec.drain()
    return rec


@settings(max_examples=300, deadline=None)
@given(policy=small_policies, plan=steps, seed=st.integers(0, 2**32 - 1), faults=st.booleans())
def test_counts_are_exact_and_writes_bounded(
    policy: SeriesPolicy, plan: list[tuple[float, Reason, str]], seed: int, faults: bool
) -> None:
    rec = play(policy, plan, seed, faults)
    check_counts_exact(rec)
    check_writes_bounded(rec)
    recorded = sum(rec.expected.values())
    assert recorded + rec.dropped_keys == len(plan)
    if not faults:
        # Without expiry or failures, each series is created exactly once.
        total_creates = sum(rec.store.creates.values())
        assert total_creates == len(rec.expected)
        assert sum(rec.store.counts.values()) == recorded


@settings(max_examples=100, deadline=None)
@given(policy=small_policies, plan=steps, seed=st.integers(0, 2**32 - 1))
def test_a_quiet_recorder_forgets_everything(
    policy: SeriesPolicy, plan: list[tuple[float, Reason, str]], seed: int
) -> None:
    rec = play(policy, plan, seed, faults=False)
    # The series is over after the window; the bucket is full after burst refills.
    rec.advance(policy.window + policy.burst * policy.refill_interval + 1)
    rec.flush()
    assert dict(rec.state.entries) == {}


@settings(max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, SERIES_WINDOW - 1), min_size=30, max_size=400),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_flapping_backend_is_one_event_with_a_growing_count(gaps: list[float], seed: int) -> None:
    """Unavailable again and again, never quiet for a whole window: one Event, one Create,
    writes within the default bucket (25, then one per 5 minutes), the exact count."""
    rec = Recorder(SeriesPolicy(), seed, faults=False)
    effects: list[Drop | Create | PatchSeries] = []
    for gap in gaps:
        rec.advance(gap)
        effects.append(rec.record(occurrence(suffix=format(len(effects), "x"))))
    rec.drain()
    assert len(rec.expected) == 1
    ((name, count),) = rec.expected.items()
    assert count == len(gaps)
    assert rec.store.counts[name] == len(gaps)
    assert sum(rec.store.creates.values()) == 1
    check_writes_bounded(rec)
    assert isinstance(effects[0], Create)
    assert all(isinstance(e, PatchSeries) for e in effects[1:SPAM_BURST])
    assert all(e.count == i + 2 for i, e in enumerate(effects[1:SPAM_BURST]) if isinstance(e, PatchSeries))


# --------------------------------------------------------------------------- examples


def test_first_occurrence_creates_repeats_patch_the_series() -> None:
    state = initial_recorder()
    state, first = record(state, occurrence(), at(0))
    assert isinstance(first, Create)
    event = first.event
    assert event.series is None
    assert event.event_time == T0
    assert (event.reason, event.type, event.action) == (Reason.BACKEND_UNAVAILABLE, EventType.WARNING, "CheckBackend")
    assert event.name == event_name(occurrence().key, "a1")
    assert event.name.startswith("demo.")
    assert event.name.endswith("-a1")
    state, second = record(state, occurrence(suffix="ffff"), at(30))
    assert second == PatchSeries(event.name, "team-a", 2, T0 + timedelta(seconds=30))
    state, third = record(state, occurrence(), at(31))
    assert third == PatchSeries(event.name, "team-a", 3, T0 + timedelta(seconds=31))


def test_different_backends_reasons_and_objects_are_different_series() -> None:
    state = initial_recorder()
    names = set()
    for occ in (
        occurrence(backend="github"),
        occurrence(backend="jira"),
        occurrence(Reason.BACKEND_RECOVERED),
        Occurrence(
            regarding=ObjectRef("v1", "VirtualMCPServer", "other", "team-a", "uid-2"),
            reason=Reason.BACKEND_UNAVAILABLE,
            note="x",
            note_key="github",
            reporting_controller="c",
            reporting_instance="i",
            name_suffix="a1",
        ),
    ):
        state, effect = record(state, occ, at(0))
        assert isinstance(effect, Create)
        names.add(effect.event.name)
    assert len(names) == 4


def test_after_a_quiet_window_the_same_key_starts_a_new_event() -> None:
    state = initial_recorder()
    state, first = record(state, occurrence(suffix="a1"), at(0))
    state, _ = record(state, occurrence(suffix="a2"), at(10))
    state, again = record(state, occurrence(suffix="b7"), at(10 + SERIES_WINDOW - 0.001))
    assert isinstance(again, PatchSeries)  # still within the window of the last occurrence
    state, new = record(state, occurrence(suffix="c3"), at(10 + 2 * SERIES_WINDOW))
    assert isinstance(first, Create)
    assert isinstance(new, Create)
    assert new.event.name != first.event.name
    assert new.event.name.endswith("-c3")
    assert new.event.series is None


def test_rate_limited_occurrences_are_counted_and_flushed_later() -> None:
    state = initial_recorder(SeriesPolicy(burst=2, refill_interval=100.0, window=360.0))
    state, create = record(state, occurrence(), at(0))
    state, patch = record(state, occurrence(), at(1))
    assert isinstance(create, Create)
    assert isinstance(patch, PatchSeries)
    state, drop = record(state, occurrence(), at(2))
    assert drop == Drop(DropReason.RATE_LIMITED, occurrence().key, 1)
    state, drop = record(state, occurrence(), at(3))
    assert isinstance(drop, Drop)
    assert drop.pending == 2
    # Two tokens at 0; one left after the Create, 0.01 after the patch at 1 s; a whole
    # token again 99 s later.
    assert next_flush_at(state) == pytest.approx(100.0)
    state, nothing = flush(state, at(99.9))
    assert nothing == ()
    state, written = flush(state, at(100.0))
    assert written == (PatchSeries(create.event.name, "team-a", 4, T0 + timedelta(seconds=3)),)
    assert next_flush_at(state) is None


def test_an_expired_event_is_created_again_with_its_whole_series() -> None:
    policy = SeriesPolicy(burst=1, refill_interval=100.0, window=360.0, max_keys=4)
    state = initial_recorder(policy)
    state, _ = record(state, occurrence(backend="a"), at(0))  # takes the only token of key a
    state, _ = record(state, occurrence(backend="a"), at(1))
    state, _ = record(state, occurrence(backend="a"), at(2))
    state, (patch,) = flush(state, at(100.0))
    assert isinstance(patch, PatchSeries)
    assert patch.count == 3
    # The patch finds no Event (the TTL took it): the next write creates it, series and all.
    state = answered(state, patch.name, WriteOutcome.NOT_FOUND)
    state, _ = record(state, occurrence(backend="a"), at(150))
    state, (create,) = flush(state, at(200.0))
    assert isinstance(create, Create)
    assert create.event.series is not None
    assert create.event.series.count == 4


def test_answers_drive_rewrites() -> None:
    state = initial_recorder()
    state, create = record(state, occurrence(), at(0))
    assert isinstance(create, Create)
    name = create.event.name
    state = answered(state, name, WriteOutcome.FAILED)
    state, (again,) = flush(state, at(1))
    assert isinstance(again, Create)  # a single occurrence has no series to patch
    state = answered(state, name, WriteOutcome.ALREADY_EXISTS)
    assert next_flush_at(state) is None  # it was there all along, with its one occurrence
    state, _ = record(state, occurrence(), at(2))
    state = answered(state, name, WriteOutcome.FAILED)
    state, (patch,) = flush(state, at(3))
    assert patch == PatchSeries(name, "team-a", 2, T0 + timedelta(seconds=2))
    assert answered(state, "someone-else", WriteOutcome.NOT_FOUND) == state
    assert answered(state, name, WriteOutcome.SUCCEEDED) == state


def test_a_create_that_finds_its_event_patches_the_series_count() -> None:
    state = initial_recorder()
    state, create = record(state, occurrence(), at(0))
    assert isinstance(create, Create)
    name = create.event.name
    state, _ = record(state, occurrence(), at(1))
    state = answered(state, name, WriteOutcome.NOT_FOUND)
    state, recreate = record(state, occurrence(), at(2))
    assert isinstance(recreate, Create)
    assert recreate.event.series is not None
    assert recreate.event.series.count == 3
    # The Event was there after all (say the 404 raced with a retry): it may hold any
    # earlier count, so the series count is patched.
    state = answered(state, name, WriteOutcome.ALREADY_EXISTS)
    state, (patch,) = flush(state, at(3))
    assert patch == PatchSeries(name, "team-a", 3, T0 + timedelta(seconds=2))


def test_a_key_is_not_forgotten_before_its_bucket_refills() -> None:
    """Forgetting a key early would hand it a fresh burst; a quiet window is not enough."""
    state = initial_recorder(SeriesPolicy(burst=3, refill_interval=45.0, window=60.0))
    for t in (0.0, 0.1, 0.2):
        state, effect = record(state, occurrence(), at(t))
        assert not isinstance(effect, Drop)
    # 90 s later the series is over (a new Event) but only two tokens came back.
    kinds = []
    for t in (90.0, 90.1, 90.2):
        state, effect = record(state, occurrence(suffix="b"), at(t))
        kinds.append(type(effect))
    assert kinds == [Create, PatchSeries, Drop]


def test_too_many_keys_drops_new_keys_without_forgetting_live_ones() -> None:
    state = initial_recorder(SeriesPolicy(max_keys=2))
    state, _ = record(state, occurrence(backend="a"), at(0))
    state, _ = record(state, occurrence(backend="b"), at(0))
    state, drop = record(state, occurrence(backend="c"), at(1))
    assert drop == Drop(DropReason.TOO_MANY_KEYS, occurrence(backend="c").key)
    assert len(state.entries) == 2
    # Once a key's series is over and its bucket full again, its slot is free.
    state, effect = record(state, occurrence(backend="c"), at(SERIES_WINDOW + SPAM_REFILL_INTERVAL))
    assert isinstance(effect, Create)
    assert list(state.entries) == [occurrence(backend="c").key]


def test_event_names_are_deterministic_valid_and_bounded() -> None:
    key = occurrence().key
    assert event_name(key, "a1") == event_name(key, "a1")
    assert event_name(key, "a1") != event_name(key, "a2")
    long_ref = ObjectRef("v1", "VirtualMCPServer", "x" * 250 + "-y", "ns", "u")
    long_key = SeriesKey(long_ref, Reason.PHASE_CHANGED, EventType.NORMAL, "k", "c")
    name = event_name(long_key, "f" * 32)
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name)
    with pytest.raises(EventSeriesError) as err:
        event_name(key, "Not-Valid")
    assert err.value.field == "name_suffix"


def test_long_notes_are_cut_to_the_api_limit_on_a_character_boundary() -> None:
    occ = Occurrence(
        regarding=VMCP,
        reason=Reason.PHASE_CHANGED,
        note="é" * 2000,
        reporting_controller="c",
        reporting_instance="i",
        name_suffix="1",
    )
    _, effect = record(initial_recorder(), occ, at(0))
    assert isinstance(effect, Create)
    assert len(effect.event.note.encode()) <= MAX_NOTE_BYTES
    assert effect.event.note == "é" * (MAX_NOTE_BYTES // 2)
    assert effect.event.type is EventType.NORMAL
    assert effect.event.action == "ReportStatus"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reporting_controller": ""}, "reporting_controller"),
        ({"reporting_instance": "x" * 129}, "reporting_instance"),
        ({"action": ""}, "action"),
        ({"name_suffix": ""}, "name_suffix"),
        ({"name_suffix": "ABC"}, "name_suffix"),
    ],
)
def test_invalid_occurrences_name_the_field(changes: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "regarding": VMCP,
        "reason": Reason.LEADER_ELECTED,
        "note": "pod-a became leader",
        "reporting_controller": "c",
        "reporting_instance": "i",
        "name_suffix": "1",
    }
    values.update(changes)
    with pytest.raises(EventSeriesError) as err:
        Occurrence(**values)  # type: ignore[arg-type]
    assert err.value.field == field


def test_invalid_object_reference_names_the_field() -> None:
    with pytest.raises(EventSeriesError) as err:
        ObjectRef("v1", "VirtualMCPServer", "demo", "")
    assert err.value.field == "regarding.namespace"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window": 0}, "window"),
        ({"window": float("inf")}, "window"),
        ({"refill_interval": -1}, "refill_interval"),
        ({"refill_interval": 400.0}, "refill_interval"),  # not shorter than the 6-minute window
        ({"burst": 0}, "burst"),
        ({"burst": 2.5}, "burst"),
        ({"max_keys": True}, "max_keys"),
    ],
)
def test_invalid_policy_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(EventSeriesError) as err:
        SeriesPolicy(**changes)  # type: ignore[arg-type]
    assert err.value.field == field


def test_defaults_are_client_go() -> None:
    policy = SeriesPolicy()
    assert (policy.burst, policy.refill_interval, policy.window) == (25, 300.0, 360.0)
    assert policy.max_flush_interval == 60.0
