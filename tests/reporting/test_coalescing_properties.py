"""Hypothesis over the pure coalescing rules: any sequence of events keeps every invariant.

A simulated shell drives :func:`step` the way the actor does (performing each effect,
feeding each write's outcome back) and, unlike the actor, may also hold a write's
outcome back while more statuses arrive, fire stale timers, crash and restart.  Checked
after every event, whatever the interleaving:

* the statuses handed to the sink are reports, in report order; the ones written are a
  strictly ordered subsequence of the reports (nothing older after newer);
* no two consecutive writes say the same thing, unless ``resend_unchanged_after`` had
  passed since the first when the second was decided;
* a write whose only news is timestamps (``lastHealthCheck``) comes at least
  ``timestamp_only_after`` after the previous write (a flush aside), while a real change
  offered with nothing in flight and no retry or throttle pending is written at once;
* one write at a time, at most one timer, and a stale timer changes nothing;
* each retry waits the backoff for its attempt: at least the un-jittered delay, never
  more than the cap, attempts counted since the last success (or skip), each kind of
  failure (answered, unreachable) on its own count; an unreachable sink is retried within
  ``unreachable_retry_max``;
* the counters balance: every status taken is written, skipped, coalesced or still unwritten;
* a flush with a healthy sink completes at once and leaves the latest report written,
  and a flush is only ever reported done when nothing is left unwritten.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.errors import ValidationError
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.coalescing import (
    DEFAULT_RETRY_BACKOFF,
    CancelTimer,
    CoalescerState,
    CoalescingPolicy,
    Event,
    FlushDone,
    FlushRequested,
    Hold,
    Now,
    Offered,
    RetryLater,
    Rewrite,
    TimerFired,
    WaitForSink,
    Write,
    WriteFailed,
    WriteSucceeded,
    only_timestamps_differ,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = Backoff(initial=0.1, maximum=2.0, factor=2.0, jitter=0.5)


def report(content: int, serial: int, checked: int | None = None) -> Status:
    """Content repeats on purpose (to exercise skipping); the timestamp makes each report distinct.

    ``checked`` moves the backend's ``lastHealthCheck``: a report that differs from another
    of the same content only in timestamps, as a probe result that changed nothing else.
    """
    backend = DiscoveredBackend("b", status="ready", last_health_check=T0 + timedelta(seconds=checked or 0))
    return Status(
        phase=Phase.READY,
        message=f"content {content}",
        discovered_backends=(backend,),
        timestamp=T0 + timedelta(seconds=serial),
    )


@attrs.frozen
class Written:
    status: Status
    decided_at: float  # when the rules chose to write it
    flushing: bool  # decided while a flush was in progress


class Shell:
    """Performs the effects of ``step`` like the actor, with a simulated sink, clock and timers."""

    def __init__(self, policy: CoalescingPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.state = CoalescerState()
        self.now = 0.0
        self.sink_ready_in = 0.0
        self.sink_failing: str | None = None  # "answered" or "unreachable" while failing
        self.hold_outcomes = False
        self.timers: dict[int, float] = {}
        self.held: tuple[Status, tuple[float, bool]] | None = None  # a write whose outcome is held back
        self.awaiting = False  # a write was handed to the sink and its outcome not fed back yet
        self.reports: list[Status] = []
        self.attempts: list[Status] = []
        self.written: list[Written] = []
        self.failures_since_success = 0
        self.answered_run = 0
        self.unreachable_run = 0
        self.flushes_done = 0

    def feed(self, event: Event) -> None:
        events = [event]
        while events:
            skipped = self.state.skipped_unchanged
            self.state, effects = step(self.state, events.pop(0), Now(self.now, self.sink_ready_in), self.policy)
            if self.state.skipped_unchanged > skipped:
                # The sink already says it: the failing streak is moot.
                self.failures_since_success = self.answered_run = self.unreachable_run = 0
            for effect in effects:
                outcome = self.perform(effect)
                if outcome is not None:
                    events.append(outcome)

    def perform(self, effect: object) -> Event | None:
        match effect:
            case Write(status=status):
                assert not self.awaiting, "a second write while one is in flight"
                assert self.state.in_flight is status
                self.awaiting = True
                self.attempts.append(status)
                decided = (self.now, self.state.flushing)
                if self.hold_outcomes:
                    self.held = (status, decided)
                    return None
                return self.outcome(status, decided)
            case RetryLater(timer=timer, delay=delay, attempt=attempt):
                assert attempt == self.failures_since_success
                backoff = self.policy.backoff
                if self.unreachable_run:
                    cap = self.policy.unreachable_retry_max
                    assert min(backoff.base_delay(self.unreachable_run), cap) <= delay <= cap
                else:
                    assert backoff.base_delay(self.answered_run) <= delay <= backoff.maximum
                self.start_timer(timer, delay)
            case Hold(timer=timer, delay=delay):
                interval = self.policy.timestamp_only_after
                assert interval is not None
                assert 0 < delay <= interval
                self.start_timer(timer, delay)
            case WaitForSink(timer=timer, delay=delay):
                assert delay == self.sink_ready_in > 0
                self.start_timer(timer, delay)
            case CancelTimer(timer=timer):
                assert self.timers.pop(timer, None) is not None, "cancelled a timer that is not outstanding"
            case FlushDone():
                assert self.state.unwritten is None, "flush reported done with a status unwritten"
                self.flushes_done += 1
            case _:
                raise AssertionError(f"unknown effect {effect!r}")
        return None

    def start_timer(self, timer: int, delay: float) -> None:
        assert not self.timers, "a second timer while one is outstanding"
        self.timers[timer] = self.now + delay

    def outcome(self, status: Status, decided: tuple[float, bool]) -> Event:
        self.awaiting = False
        if self.sink_failing is not None:
            self.failures_since_success += 1
            unreachable = self.sink_failing == "unreachable"
            if unreachable:
                self.answered_run, self.unreachable_run = 0, self.unreachable_run + 1
            else:
                self.answered_run, self.unreachable_run = self.answered_run + 1, 0
            return WriteFailed("SinkError: unavailable", self.rng.random(), unreachable)
        self.failures_since_success = self.answered_run = self.unreachable_run = 0
        self.written.append(Written(status, *decided))
        return WriteSucceeded()

    def release_held(self) -> None:
        if self.held is not None:
            status, decided = self.held
            self.held = None
            self.feed(self.outcome(status, decided))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer, due in sorted(self.timers.items(), key=lambda item: item[1]):
            if due <= self.now and timer in self.timers:
                del self.timers[timer]
                self.feed(TimerFired(timer, None))


class CoalescingMachine(RuleBasedStateMachine):
    shell: Shell

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        resend=st.sampled_from([None, None, 0.0, 1.0, 30.0]),
        hold=st.sampled_from([None, 1.0, 30.0]),
        unreachable_max=st.sampled_from([0.25, 1.0]),
    )
    def start(self, seed: int, resend: float | None, hold: float | None, unreachable_max: float) -> None:
        policy = CoalescingPolicy(BACKOFF, resend, hold, unreachable_max)
        self.shell = Shell(policy, random.Random(seed))

    @rule(content=st.integers(0, 2))
    def offer(self, content: int) -> None:
        self.offer_status(report(content, len(self.shell.reports)))

    @rule()
    def refresh(self) -> None:
        """Only timestamps changed: the last report again, its backend checked later."""
        shell = self.shell
        content = int(shell.reports[-1].message.split()[-1]) if shell.reports else 0
        serial = len(shell.reports)
        self.offer_status(report(content, serial, checked=serial))

    def offer_status(self, status: Status) -> None:
        shell = self.shell
        state = shell.state
        real_change = not only_timestamps_differ(status, state.last_written)
        free = state.in_flight is None and (state.timer is None or state.holding) and shell.sink_ready_in == 0
        shell.reports.append(status)
        shell.feed(Offered(status))
        if real_change and free:
            assert shell.attempts, "a real change was not written at once"
            assert shell.attempts[-1] is status, "a real change was not written at once"

    @rule()
    def empty_wake(self) -> None:
        self.shell.feed(Offered(None))

    @rule(failing=st.sampled_from([None, "answered", "unreachable"]))
    def sink_health(self, failing: str | None) -> None:
        self.shell.sink_failing = failing

    @rule(wait=st.sampled_from([0.0, 0.0, 0.3]))
    def sink_throttle(self, wait: float) -> None:
        self.shell.sink_ready_in = wait

    @rule(hold=st.booleans())
    def sink_latency(self, hold: bool) -> None:
        """Hold write outcomes back (an asynchronous sink) or release the one held."""
        self.shell.hold_outcomes = hold
        if not hold:
            self.shell.release_held()

    @rule(seconds=st.sampled_from([0.05, 0.3, 1.0, 5.0, 45.0]))
    def time_passes(self, seconds: float) -> None:
        self.shell.advance(seconds)

    @rule(offset=st.integers(-3, 3))
    def stale_timer(self, offset: int) -> None:
        timer = self.shell.state.timers_started + offset
        if timer in self.shell.timers:
            return  # not stale: that one fires through time_passes
        before = self.shell.state
        self.shell.feed(TimerFired(timer, None))
        if before.in_flight is not None or before.timer is not None:
            assert self.shell.state == before, "a stale timer changed the state"

    @rule()
    def flush(self) -> None:
        self.shell.feed(FlushRequested(None))

    @rule()
    def flush_with_a_healthy_sink(self) -> None:
        shell = self.shell
        shell.sink_failing, shell.sink_ready_in, shell.hold_outcomes = None, 0.0, False
        shell.release_held()
        done = shell.flushes_done
        shell.feed(FlushRequested(None))
        assert shell.flushes_done == done + 1, "a flush with a healthy sink did not complete at once"
        assert shell.state.unwritten is None
        assert not shell.timers
        if shell.reports:
            assert shell.written, "nothing written although statuses were reported"
            assert shell.written[-1].status.same_content(shell.reports[-1])

    @rule(newer_waiting=st.booleans(), content=st.integers(0, 2))
    def crash(self, newer_waiting: bool, content: int) -> None:
        """The actor dies and its replacement starts from ``after_crash``, taking what the slot holds.

        The unwritten status goes back into the slot, unless a newer report already waits
        there; either way the replacement's first wake-up takes the slot's content.
        """
        shell = self.shell
        unwritten = shell.state.unwritten
        shell.state = shell.state.after_crash(requeued=unwritten is not None and not newer_waiting)
        shell.timers.clear()
        shell.held = None
        shell.awaiting = False
        shell.failures_since_success = shell.answered_run = shell.unreachable_run = 0
        in_slot = unwritten
        if newer_waiting:
            in_slot = report(content, len(shell.reports))
            shell.reports.append(in_slot)
        shell.feed(Offered(in_slot))

    @invariant()
    def writes_are_an_ordered_subsequence_of_reports(self) -> None:
        index = {id(status): i for i, status in enumerate(self.shell.reports)}
        attempted = [index[id(status)] for status in self.shell.attempts]
        assert attempted == sorted(attempted)
        written = [index[id(each.status)] for each in self.shell.written]
        assert written == sorted(set(written))

    @invariant()
    def consecutive_writes_differ_unless_resend_was_due(self) -> None:
        resend = self.shell.policy.resend_unchanged_after
        for before, after in itertools.pairwise(self.shell.written):
            if before.status.same_content(after.status):
                assert resend is not None, "an unchanged status was written again"
                assert after.decided_at - before.decided_at >= resend

    @invariant()
    def timestamp_only_writes_wait_for_the_interval(self) -> None:
        interval = self.shell.policy.timestamp_only_after
        if interval is None:
            return
        for before, after in itertools.pairwise(self.shell.written):
            if after.flushing or not only_timestamps_differ(after.status, before.status):
                continue
            assert after.decided_at - before.decided_at >= interval - 1e-9, "timestamps alone went out early"

    @invariant()
    def the_outstanding_timer_is_the_one_the_state_knows(self) -> None:
        state = self.shell.state
        assert set(self.shell.timers) == ({state.timer} if state.timer is not None else set())

    @invariant()
    def counters_balance(self) -> None:
        state = self.shell.state
        unwritten = int(state.pending is not None) + int(state.in_flight is not None)
        assert state.received == state.written + state.skipped_unchanged + state.coalesced + unwritten
        assert state.written == len(self.shell.written)
        assert state.stats().pending == (unwritten > 0)


CoalescingMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestCoalescingRules = CoalescingMachine.TestCase


# --------------------------------------------------------------------------- single rules


def write_one(
    state: CoalescerState, status: Status, now: float, policy: CoalescingPolicy, latency: float = 0.0
) -> CoalescerState:
    state, effects = step(state, Offered(status), Now(now), policy)
    assert effects == (Write(status),)
    state, effects = step(state, WriteSucceeded(), Now(now + latency), policy)
    assert effects == ()
    return state


@given(resend=st.floats(0, 100), elapsed=st.floats(0, 200), latency=st.floats(0, 5))
def test_an_unchanged_status_is_resent_exactly_when_resend_unchanged_after_has_passed(
    resend: float, elapsed: float, latency: float
) -> None:
    """Measured from when the last write was decided: the sink's latency does not slow the cadence."""
    policy = CoalescingPolicy(resend_unchanged_after=resend)
    state = write_one(CoalescerState(), report(1, 0), 10.0, policy, latency)
    again = report(1, 1)
    at = 10.0 + max(elapsed, latency)
    state, effects = step(state, Offered(again), Now(at), policy)
    if at - 10.0 >= resend:
        assert effects == (Write(again),)
    else:
        assert effects == ()
        assert state.skipped_unchanged == 1


@given(failures=st.integers(1, 40), draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=40, max_size=40))
def test_retry_delays_grow_to_the_cap_and_never_beyond(failures: int, draws: list[float]) -> None:
    policy = CoalescingPolicy()
    status = report(1, 0)
    state, _ = step(CoalescerState(), Offered(status), Now(0.0), policy)
    delays = []
    for attempt in range(1, failures + 1):
        state, effects = step(state, WriteFailed("boom", draws[attempt - 1]), Now(0.0), policy)
        (retry,) = effects
        assert isinstance(retry, RetryLater)
        assert retry.attempt == attempt
        assert retry.status is status
        delays.append(retry.delay)
        state, effects = step(state, TimerFired(retry.timer, None), Now(0.0), policy)
        assert effects == (Write(status),)
    assert all(DEFAULT_RETRY_BACKOFF.base_delay(n) <= d <= 30.0 for n, d in enumerate(delays, 1))
    assert all(d == 30.0 for d in delays[9:])  # 0.1 * 2**9 > 30: capped from the tenth on


@given(contents=st.lists(st.integers(0, 3), min_size=1, max_size=20))
def test_the_newest_status_replaces_the_one_being_retried(contents: list[int]) -> None:
    policy = CoalescingPolicy()
    first = report(9, 0)
    state, _ = step(CoalescerState(), Offered(first), Now(0.0), policy)
    state, (retry,) = step(state, WriteFailed("boom", 0.0), Now(0.0), policy)
    assert isinstance(retry, RetryLater)
    newer = [report(content, serial) for serial, content in enumerate(contents, 1)]
    for status in newer:
        state, effects = step(state, Offered(status), Now(0.0), policy)
        assert effects == ()  # waits out the backoff
    state, effects = step(state, TimerFired(retry.timer, None), Now(retry.delay), policy)
    assert effects == (Write(newer[-1]),)
    assert state.coalesced == len(newer)


def test_a_flush_cuts_the_backoff_short_and_completes_after_the_write() -> None:
    policy = CoalescingPolicy()
    status = report(1, 0)
    state, _ = step(CoalescerState(), Offered(status), Now(0.0), policy)
    state, (retry,) = step(state, WriteFailed("boom", 0.0), Now(0.0), policy)
    assert isinstance(retry, RetryLater)
    state, effects = step(state, FlushRequested(None), Now(0.0), policy)
    assert effects == (CancelTimer(retry.timer), Write(status))
    state, effects = step(state, WriteSucceeded(), Now(0.0), policy)
    assert effects == (FlushDone(),)
    state, effects = step(state, TimerFired(retry.timer, None), Now(5.0), policy)
    assert effects == ()  # the cancelled timer, had it fired anyway, changes nothing


def test_a_throttled_sink_is_waited_for_and_gets_the_newest_status() -> None:
    policy = CoalescingPolicy()
    state, effects = step(CoalescerState(), Offered(report(1, 0)), Now(0.0, sink_ready_in=0.4), policy)
    assert effects == (WaitForSink(1, 0.4),)
    state, effects = step(state, Offered(report(2, 1)), Now(0.1), policy)
    assert effects == ()
    state, effects = step(state, TimerFired(1, None), Now(0.4), policy)
    assert effects == (Write(report(2, 1)),)
    assert state.attempt == 0  # waiting for the sink is not a failure


def test_results_without_a_write_in_flight_change_nothing() -> None:
    policy = CoalescingPolicy()
    state = CoalescerState(received=3)
    assert step(state, WriteSucceeded(), Now(0.0), policy) == (state, ())
    assert step(state, WriteFailed("x", 0.5), Now(0.0), policy) == (state, ())


def test_a_negative_resend_interval_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="resend_unchanged_after"):
        CoalescingPolicy(resend_unchanged_after=-1.0)


# --------------------------------------------------------------------------- steady state and outages


def steady_report(backends: int, checks: tuple[int, ...], serial: int, phase: Phase = Phase.READY) -> Status:
    """``backends`` healthy backends, each last checked at its own second."""
    return Status(
        phase=phase,
        message=f"{backends} backends",
        discovered_backends=tuple(
            DiscoveredBackend(f"b{i}", status="ready", last_health_check=T0 + timedelta(seconds=checks[i]))
            for i in range(backends)
        ),
        timestamp=T0 + timedelta(seconds=serial),
    )


@settings(deadline=None)
@given(
    backends=st.integers(1, 40),
    gaps=st.lists(st.floats(0.01, 3.0), min_size=1, max_size=300),
    interval=st.sampled_from([5.0, 30.0]),
    changes=st.sets(st.integers(0, 299), max_size=5),
)
def test_a_steady_state_costs_at_most_two_writes_per_interval_whatever_the_backends(
    backends: int, gaps: list[float], interval: float, changes: set[int]
) -> None:
    """Probes refresh lastHealthCheck at any rate; the health actor re-asserts every interval.

    Writes without news wait for the interval; a real change (a phase flip) goes out at once.
    """
    policy = CoalescingPolicy(resend_unchanged_after=interval, timestamp_only_after=interval)
    state = CoalescerState()
    now, checks, phase = 0.0, [0] * backends, Phase.READY
    timers: dict[int, float] = {}
    writes: list[tuple[float, bool]] = []  # (when, because of a real change)

    def feed(event: Event, real: bool = False) -> None:
        nonlocal state
        state, effects = step(state, event, Now(now), policy)
        for effect in effects:
            match effect:
                case Write():
                    writes.append((now, real))
                    feed(WriteSucceeded())
                case Hold(timer=timer, delay=delay):
                    timers[timer] = now + delay
                case CancelTimer(timer=timer):
                    timers.pop(timer)
                case _:
                    raise AssertionError(f"unexpected {effect!r}")

    for serial, gap in enumerate(gaps):
        for timer, due in sorted(timers.items(), key=lambda item: item[1]):
            if due <= now + gap:
                now = due
                del timers[timer]
                feed(TimerFired(timer, None))
        now += gap
        real = serial in changes
        if real:
            phase = Phase.DEGRADED if phase is Phase.READY else Phase.READY
        else:
            checks[serial % backends] = serial + 1
        before = len(writes)
        feed(Offered(steady_report(backends, tuple(checks), serial, phase)), real)
        if real:
            assert len(writes) == before + 1, "a real change waited"
            assert writes[-1] == (now, True)
    routine = [at for at, real in writes[1:] if not real]
    for earlier, later in itertools.pairwise([writes[0][0], *routine]):
        assert later - earlier >= interval - 1e-9 or any(earlier <= at <= later for at, real in writes if real)
    span = now - writes[0][0]
    assert len(routine) <= 2 * (span / interval + 1), "more than two routine writes per interval"


@given(failures=st.integers(1, 30), draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=31, max_size=31))
def test_an_unreachable_sink_is_retried_within_the_cap_and_an_answer_starts_a_fresh_backoff(
    failures: int, draws: list[float]
) -> None:
    policy = CoalescingPolicy(unreachable_retry_max=1.0)
    status = report(1, 0)
    state, _ = step(CoalescerState(), Offered(status), Now(0.0), policy)
    for attempt in range(1, failures + 1):
        state, (retry,) = step(state, WriteFailed("refused", draws[attempt - 1], unreachable=True), Now(0.0), policy)
        assert isinstance(retry, RetryLater)
        assert retry.attempt == attempt
        assert min(DEFAULT_RETRY_BACKOFF.base_delay(attempt), 1.0) <= retry.delay <= 1.0
        state, effects = step(state, TimerFired(retry.timer, None), Now(0.0), policy)
        assert effects == (Write(status),)
    # The server is back but overloaded: its first 503 waits the shortest delay, not the 30 s cap.
    state, (retry,) = step(state, WriteFailed("503", draws[-1]), Now(0.0), policy)
    assert isinstance(retry, RetryLater)
    assert retry.attempt == failures + 1
    assert retry.delay == DEFAULT_RETRY_BACKOFF.delay(1, draws[-1])


def test_a_flush_cuts_a_timestamp_only_hold_short() -> None:
    policy = CoalescingPolicy(timestamp_only_after=30.0)
    state = write_one(CoalescerState(), report(1, 0), 0.0, policy)
    refreshed = report(1, 1, checked=1)
    state, effects = step(state, Offered(refreshed), Now(5.0), policy)
    assert effects == (Hold(1, 25.0),)
    state, effects = step(state, FlushRequested(None), Now(6.0), policy)
    assert effects == (CancelTimer(1), Write(refreshed))
    state, effects = step(state, WriteSucceeded(), Now(6.0), policy)
    assert effects == (FlushDone(),)


@given(same_timestamps=st.booleans())
def test_a_new_writer_writes_the_latest_at_once_even_if_it_equals_the_last_write(same_timestamps: bool) -> None:
    """Leader election: what a follower "wrote" was withheld, so a new leader must not skip or hold it."""
    policy = CoalescingPolicy(resend_unchanged_after=None, timestamp_only_after=30.0)
    state = write_one(CoalescerState(), report(1, 0), 0.0, policy)
    latest = report(1, 0) if same_timestamps else report(1, 1, checked=1)
    _, offered = step(state, Offered(latest), Now(5.0), policy)
    assert Write(latest) not in offered  # an ordinary offer is skipped or held
    state, effects = step(state, Rewrite(latest), Now(5.0), policy)
    assert effects[-1] == Write(latest)
    assert state.last_written is None


def test_a_real_change_cuts_a_hold_short_and_the_hold_then_writes_the_latest() -> None:
    policy = CoalescingPolicy(timestamp_only_after=30.0)
    state = write_one(CoalescerState(), report(1, 0), 0.0, policy)
    state, effects = step(state, Offered(report(1, 1, checked=1)), Now(5.0), policy)
    assert effects == (Hold(1, 25.0),)
    changed = report(2, 2, checked=2)
    state, effects = step(state, Offered(changed), Now(7.0), policy)
    assert effects == (CancelTimer(1), Write(changed))
    state, _ = step(state, WriteSucceeded(), Now(7.0), policy)
    later = report(2, 3, checked=3)
    state, effects = step(state, Offered(later), Now(8.0), policy)
    assert effects == (Hold(2, 29.0),)
    state, effects = step(state, TimerFired(2, None), Now(37.0), policy)
    assert effects == (Write(later),)


def test_the_unreachable_cap_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="unreachable_retry_max"):
        CoalescingPolicy(unreachable_retry_max=0.0)
