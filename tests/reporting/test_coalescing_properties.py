"""Hypothesis over the pure coalescing rules: any sequence of events keeps every invariant.

A simulated shell drives :func:`step` the way the actor does (performing each effect,
feeding each write's outcome back) and, unlike the actor, may also hold a write's
outcome back while more statuses arrive, fire stale timers, crash and restart.  Checked
after every event, whatever the interleaving:

* the statuses handed to the sink are reports, in report order; the ones written are a
  strictly ordered subsequence of the reports (nothing older after newer);
* no two consecutive writes say the same thing, unless ``resend_unchanged_after`` had
  passed since the first when the second was decided;
* one write at a time, at most one timer, and a stale timer changes nothing;
* each retry waits the backoff for its attempt: at least the un-jittered delay, never
  more than the cap, attempts counted since the last success (or skip);
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
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.coalescing import (
    DEFAULT_RETRY_BACKOFF,
    CancelTimer,
    CoalescerState,
    CoalescingPolicy,
    Event,
    FlushDone,
    FlushRequested,
    Now,
    Offered,
    RetryLater,
    TimerFired,
    WaitForSink,
    Write,
    WriteFailed,
    WriteSucceeded,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = Backoff(initial=0.1, maximum=2.0, factor=2.0, jitter=0.5)


def report(content: int, serial: int) -> Status:
    """Content repeats on purpose (to exercise skipping); the timestamp makes each report distinct."""
    return Status(phase=Phase.READY, message=f"content {content}", timestamp=T0 + timedelta(seconds=serial))


@attrs.frozen
class Written:
    status: Status
    decided_at: float  # when the rules chose to write it


class Shell:
    """Performs the effects of ``step`` like the actor, with a simulated sink, clock and timers."""

    def __init__(self, policy: CoalescingPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.state = CoalescerState()
        self.now = 0.0
        self.sink_ready_in = 0.0
        self.sink_failing = False
        self.hold_outcomes = False
        self.timers: dict[int, float] = {}
        self.held: tuple[Status, float] | None = None  # a write whose outcome is held back
        self.awaiting = False  # a write was handed to the sink and its outcome not fed back yet
        self.reports: list[Status] = []
        self.attempts: list[Status] = []
        self.written: list[Written] = []
        self.failures_since_success = 0
        self.flushes_done = 0

    def feed(self, event: Event) -> None:
        events = [event]
        while events:
            skipped = self.state.skipped_unchanged
            self.state, effects = step(self.state, events.pop(0), Now(self.now, self.sink_ready_in), self.policy)
            if self.state.skipped_unchanged > skipped:
                self.failures_since_success = 0  # the sink already says it: the failing streak is moot
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
                if self.hold_outcomes:
                    self.held = (status, self.now)
                    return None
                return self.outcome(status, self.now)
            case RetryLater(timer=timer, delay=delay, attempt=attempt):
                assert attempt == self.failures_since_success
                assert self.policy.backoff.base_delay(attempt) <= delay <= self.policy.backoff.maximum
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

    def outcome(self, status: Status, decided_at: float) -> Event:
        self.awaiting = False
        if self.sink_failing:
            self.failures_since_success += 1
            return WriteFailed("SinkError: unavailable", self.rng.random())
        self.failures_since_success = 0
        self.written.append(Written(status, decided_at))
        return WriteSucceeded()

    def release_held(self) -> None:
        if self.held is not None:
            status, decided_at = self.held
            self.held = None
            self.feed(self.outcome(status, decided_at))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer, due in sorted(self.timers.items(), key=lambda item: item[1]):
            if due <= self.now and timer in self.timers:
                del self.timers[timer]
                self.feed(TimerFired(timer, None))


class CoalescingMachine(RuleBasedStateMachine):
    shell: Shell

    @initialize(seed=st.integers(0, 2**32 - 1), resend=st.sampled_from([None, None, 0.0, 1.0, 30.0]))
    def start(self, seed: int, resend: float | None) -> None:
        self.shell = Shell(CoalescingPolicy(BACKOFF, resend), random.Random(seed))

    @rule(content=st.integers(0, 2))
    def offer(self, content: int) -> None:
        status = report(content, len(self.shell.reports))
        self.shell.reports.append(status)
        self.shell.feed(Offered(status))

    @rule()
    def empty_wake(self) -> None:
        self.shell.feed(Offered(None))

    @rule(failing=st.booleans())
    def sink_health(self, failing: bool) -> None:
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
        shell.sink_failing, shell.sink_ready_in, shell.hold_outcomes = False, 0.0, False
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
        shell.failures_since_success = 0
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
