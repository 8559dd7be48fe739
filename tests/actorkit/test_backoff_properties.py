"""Backoff: bounded, monotone until capped, and jittered only within its bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.errors import ValidationError

draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(st.floats(min_value=0.001, max_value=60.0))
    factor = draw(st.floats(min_value=1.0, max_value=4.0))
    return Backoff(
        initial=initial,
        maximum=initial * draw(st.floats(min_value=1.0, max_value=10_000.0)),
        factor=factor,
        jitter=draw(st.floats(min_value=0.0, max_value=factor - 1.0)),
    )


@given(backoffs(), st.integers(min_value=1, max_value=200), draws)
def test_delay_lies_between_the_base_and_its_jittered_bound_and_never_past_the_cap(
    backoff: Backoff, attempt: int, draw: float
) -> None:
    base = backoff.base_delay(attempt)
    delay = backoff.delay(attempt, draw)
    assert min(base, backoff.maximum) <= delay <= min(base * (1 + backoff.jitter), backoff.maximum)
    assert delay <= backoff.maximum


@given(backoffs(), st.integers(min_value=1, max_value=100), draws, draws)
def test_delays_are_monotone_in_the_attempt_for_any_draws(
    backoff: Backoff, attempt: int, first: float, second: float
) -> None:
    assert backoff.delay(attempt, first) <= backoff.delay(attempt + 1, second) + 1e-9


def test_musters_numbers_without_jitter() -> None:
    backoff = Backoff(initial=30.0, maximum=1800.0, factor=2.0, jitter=0.0)
    assert [backoff.delay(n, 0.5) for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_a_huge_attempt_number_is_capped_cheaply() -> None:
    assert Backoff(initial=1.0, maximum=8.0).base_delay(10**6) == 8.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0.0, "maximum": 1.0}, "backoff.initial"),
        ({"initial": 2.0, "maximum": 1.0}, "backoff.maximum"),
        ({"initial": 1.0, "maximum": 2.0, "factor": 0.5}, "backoff.factor"),
        ({"initial": 1.0, "maximum": 2.0, "factor": 2.0, "jitter": 1.5}, "backoff.jitter"),
    ],
)
def test_invalid_settings_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Backoff(**kwargs)
    assert info.value.field == field
