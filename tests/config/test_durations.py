"""Go durations: the CRD's pattern, exact values, and Go's way of printing them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vmcp_actors.config.durations import MAX_DURATION_CHARS, MAX_DURATION_NS, format_duration, parse_duration
from vmcp_actors.errors import ValidationError

FIELD = "backends[0].timeout"
UNITS = ["ns", "us", "µs", "ms", "s", "m", "h"]


def parse_or_error(value: object) -> float | ValidationError:
    """The parsed seconds, or the error: a property holds for both outcomes."""
    try:
        return parse_duration(value, FIELD)
    except ValidationError as exc:
        return exc


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("10ns", 1e-8),
        ("100us", 1e-4),
        ("100µs", 1e-4),
        ("1h1h", 7200.0),
        ("2562047h47m16.854775807s", (2**63 - 1) / 1e9),
        (30, 30.0),
        (2.5, 2.5),
        (0, 0.0),
        (-5, -5.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text, "f") == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "has no unit: write 30s, or the number 30 without quotes"),
        ("x", "invalid duration 'x'"),
        ("30x", "invalid duration '30x'"),
        ("-5s", "invalid duration '-5s'"),
        ("5 s", "invalid duration '5 s'"),
        ("", "must not be empty"),
        (" 5s", "invalid duration ' 5s'"),
        ("5s\n", "invalid duration '5s\\n'"),
        ("5S", "invalid duration '5S'"),
        (".5s", "invalid duration '.5s'"),
        ("1.s", "invalid duration '1.s'"),
        ("2562047h47m16.854775808s", "out of range"),
        ("9" * 100 + "s", "invalid duration"),
        (10**10, "out of range"),
        (1e300, "out of range"),
        (math.inf, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (True, "got bool True"),
        (None, "got NoneType None"),
        ([30], "got list [30]"),
    ],
)
def test_parse_duration_rejects_with_the_field_and_the_value(text: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(text, "failureHandling.healthCheckInterval")
    assert info.value.field == "failureHandling.healthCheckInterval"
    assert message in str(info.value)
    assert str(info.value).startswith("failureHandling.healthCheckInterval: ")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "1m30s"),
        (0.5, "500ms"),
        (3723.5, "1h2m3.5s"),
        (3600, "1h0m0s"),
        (60, "1m0s"),
        (1.5, "1.5s"),
        (1e-6, "1µs"),
        (1.5e-6, "1.5µs"),
        (1e-9, "1ns"),
        (0.0012, "1.2ms"),
        (-1.5, "-1.5s"),
        (30.000000001, "30.000000001s"),
    ],
)
def test_format_duration_reads_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [math.inf, math.nan, True, "30s"])
def test_format_duration_rejects_what_is_not_a_finite_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(bad)


# --------------------------------------------------------------------------- properties


@st.composite
def duration_texts(draw: st.DrawFn) -> str:
    """Text matching the CRD pattern: one to four number-unit terms."""
    terms = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=999),
                st.none() | st.from_regex(r"\A[0-9]{1,3}\Z"),
                st.sampled_from(UNITS),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return "".join(f"{whole}{'' if frac is None else '.' + frac}{unit}" for whole, frac, unit in terms)


duration_inputs = (
    duration_texts()
    | st.sampled_from(["30", "x", "30x", "-5s", "5 s", "", "1.s", ".5s", "5S", "1e3s", "∞", "9" * 70 + "h"])
    | st.text(max_size=10)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.none()
    | st.booleans()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_format_then_parse_returns_the_duration(seconds: float) -> None:
    assert parse_duration(format_duration(seconds), "f") == pytest.approx(seconds, rel=1e-15, abs=1e-9)


@given(st.integers(min_value=0, max_value=10**18))
def test_format_then_parse_whole_nanoseconds_up_to_thirty_years(ns: int) -> None:
    seconds = ns / 10**9
    text = format_duration(seconds)
    assert parse_duration(text, "f") == pytest.approx(seconds, rel=1e-15, abs=1e-9)


@given(duration_texts())
def test_any_pattern_duration_parses_and_survives_formatting(text: str) -> None:
    seconds = parse_duration(text, "f")
    assert math.isfinite(seconds)
    assert seconds >= 0
    assert parse_duration(format_duration(seconds), "f") == pytest.approx(seconds, rel=1e-15, abs=1e-9)


@given(duration_texts(), duration_texts())
def test_writing_two_durations_together_adds_them(first: str, second: str) -> None:
    assume(len(first + second) <= MAX_DURATION_CHARS)  # longer texts are refused (below)
    together = parse_duration(first + second, "f")
    assert together == pytest.approx(parse_duration(first, "f") + parse_duration(second, "f"), rel=1e-15, abs=1e-15)


@given(duration_texts(), duration_texts(), duration_texts())
def test_a_duration_text_longer_than_the_cap_is_refused_naming_the_field(a: str, b: str, c: str) -> None:
    text = (a + b + c) * 2
    assume(len(text) > MAX_DURATION_CHARS)
    with pytest.raises(ValidationError) as caught:
        parse_duration(text, "failureHandling.healthCheckInterval")
    assert caught.value.field == "failureHandling.healthCheckInterval"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(UNITS))
def test_a_whole_number_of_a_unit_is_that_many_nanoseconds_times_the_unit(count: int, unit: str) -> None:
    ns_per_unit = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    assert parse_duration(f"{count}{unit}", "f") == count * ns_per_unit[unit] / 10**9


@given(st.integers(min_value=-(10**9), max_value=10**9) | st.floats(min_value=-1e9, max_value=1e9))
def test_numbers_of_seconds_pass_through_as_floats(seconds: float) -> None:
    parsed = parse_duration(seconds, "f")
    assert isinstance(parsed, float)
    assert parsed == seconds


@given(duration_inputs)
def test_parse_duration_accepts_or_raises_a_validation_error_naming_the_field(value: object) -> None:
    outcome = parse_or_error(value)
    if isinstance(outcome, ValidationError):
        assert outcome.field == FIELD
        assert str(outcome).startswith(f"{FIELD}: ")
        assert len(str(outcome)) < 300  # a huge bad value is cut short, not echoed
    else:
        assert math.isfinite(outcome)
        assert abs(outcome) * 10**9 <= MAX_DURATION_NS * (1 + 1e-15)
