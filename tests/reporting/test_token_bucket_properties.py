"""The client-side token bucket, driven by a manual clock: client-go's guarantees, exactly.

A sequence of waits and requests is generated; the clock only moves when the sequence
says so, so every bound is checked without a single real sleep.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.actorkit.timers import ManualClock
from vmcp_actors.errors import ValidationError
from vmcp_actors.reporting.kubernetes.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket

EPSILON = 1e-6

rates = st.floats(min_value=0.1, max_value=1000.0)
bursts = st.integers(min_value=1, max_value=50)
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=2.0), st.sampled_from(["reserve", "try_take"])),
    min_size=1,
    max_size=80,
)


def run(qps: float, burst: int, plan: list[tuple[float, str]]) -> tuple[list[float], list[float]]:
    """Play ``plan``; return when each granted token is due and every wait handed out."""
    clock = ManualClock()
    bucket = TokenBucket(qps, burst, clock)
    start = clock.monotonic()
    due: list[float] = []
    waits: list[float] = []
    for advance, action in plan:
        clock.advance(advance)
        now = clock.monotonic() - start
        if action == "reserve":
            wait = bucket.reserve()
            waits.append(wait)
            due.append(now + wait)
        elif bucket.try_take():
            due.append(now)
    return due, waits


@given(rates, bursts, steps)
def test_no_window_gets_more_than_burst_plus_rate_times_its_length(
    qps: float, burst: int, plan: list[tuple[float, str]]
) -> None:
    due, _ = run(qps, burst, plan)
    ordered = sorted(due)
    for first in range(len(ordered)):
        for last in range(first, len(ordered)):
            window = ordered[last] - ordered[first]
            assert last - first + 1 <= burst + qps * window + EPSILON


@given(rates, bursts, steps)
def test_waits_are_never_negative_and_tokens_come_in_order(
    qps: float, burst: int, plan: list[tuple[float, str]]
) -> None:
    due, waits = run(qps, burst, plan)
    assert all(wait >= 0 for wait in waits)
    assert all(later >= earlier - EPSILON for earlier, later in itertools.pairwise(due))


@given(rates, bursts)
def test_a_rested_bucket_grants_a_full_burst_at_once_then_one_per_interval(qps: float, burst: int) -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps, burst, clock)
    clock.advance(10 * burst / qps)  # resting longer never stores more than the burst
    assert [bucket.reserve() for _ in range(burst)] == [0.0] * burst
    assert not bucket.try_take()
    waits = [bucket.reserve() for _ in range(3)]
    assert waits == pytest.approx([1 / qps, 2 / qps, 3 / qps])


@given(rates, bursts, st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60))
def test_try_take_never_reserves_ahead(qps: float, burst: int, gaps: list[float]) -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps, burst, clock)
    for gap in gaps:
        clock.advance(gap)
        had = bucket.available()
        assert bucket.try_take() == (had >= 1.0)
        assert bucket.available() >= -EPSILON
    # So a reservation made next waits at most one refill interval.
    assert bucket.reserve() <= 1 / qps + EPSILON


@given(st.floats(max_value=0.0, allow_nan=False, allow_infinity=False), st.integers(min_value=-5, max_value=5))
def test_zero_or_negative_qps_disables_limiting(qps: float, burst: int) -> None:
    bucket = TokenBucket(qps, burst, ManualClock())
    assert not bucket.enabled
    assert all(bucket.reserve() == 0.0 and bucket.try_take() for _ in range(1000))
    assert bucket.available() == math.inf


def test_wait_sleeps_with_the_given_function() -> None:
    clock = ManualClock()
    bucket = TokenBucket(4.0, 1, clock)
    slept: list[float] = []
    assert bucket.wait(slept.append) == 0.0
    assert bucket.wait(slept.append) == pytest.approx(0.25)
    assert slept == [pytest.approx(0.25)]


def test_defaults_are_client_gos() -> None:
    bucket = TokenBucket()
    assert (bucket.qps, bucket.burst) == (DEFAULT_QPS, DEFAULT_BURST) == (5.0, 10)


@pytest.mark.parametrize(("qps", "burst", "field"), [(math.nan, 1, "qps"), (math.inf, 1, "qps"), (1.0, 0, "burst")])
def test_invalid_settings_are_rejected(qps: float, burst: int, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TokenBucket(qps, burst)
    assert caught.value.field == field
