"""Field paths in problems, value descriptions, and the mapping reader: properties of the shared helpers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.config.fields import (
    attempt,
    check_count,
    check_seconds,
    describe,
    key_path,
    repath,
    show,
    unknown_keys,
)
from vmcp_actors.config.reading import MappingReader
from vmcp_actors.errors import ValidationError

SECRET = "S3CR3T-fields"
simple_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_-]{0,10}\Z")
paths = st.sampled_from(["", "backends[0]", "failureHandling", "backends[2].env"])
anything = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300) | st.lists(st.integers())


@given(paths, simple_keys)
def test_a_simple_key_is_joined_with_a_dot(path: str, key: str) -> None:
    assert key_path(path, key) == (f"{path}.{key}" if path else key)


@given(paths, st.text(max_size=20).filter(lambda k: not k[:1].isalpha() and not k.startswith("_")) | st.integers())
def test_an_odd_key_is_quoted_in_brackets(path: str, key: object) -> None:
    assert key_path(path, key) == f"{path}[{show(key)}]"


@given(anything, st.integers(min_value=2, max_value=200))
def test_show_is_the_repr_cut_to_the_limit(value: object, limit: int) -> None:
    text = show(value, limit)
    assert len(text) <= limit
    if isinstance(value, list) and len(value) > 8:
        assert text.startswith("[")  # a long list shows its first items only (bounded work)
        return
    assert text == repr(value) or (text.endswith("…") and repr(value).startswith(text[:-1]))


class _Counted:
    """Counts how often it is shown: the work ``show`` does, without timing anything."""

    shown = 0

    def __repr__(self) -> str:
        _Counted.shown += 1
        return "counted"


def test_show_walks_a_few_items_of_a_huge_value_not_all_of_them() -> None:
    _Counted.shown = 0
    assert show([[_Counted()] * 1000] * 1000).startswith("[[counted, counted")
    assert 0 < _Counted.shown <= 8 * 8  # not 1000 * 1000
    # What PyYAML builds from a nine-level alias bomb: 9**9 leaves, shared 9 times per level.
    bomb: object = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9
    assert show(bomb, 30) == "[[[[...], [...], [...], [...]…"
    assert show(10**5000) == "<int that cannot be shown>"


@given(anything)
def test_describe_names_the_type(value: object) -> None:
    assert describe(value).startswith(f"{type(value).__name__} ")


@given(simple_keys, st.text(min_size=1, max_size=40), anything, paths)
def test_repath_moves_the_field_and_keeps_message_and_value(
    field: str, message: str, value: object, prefix: str
) -> None:
    moved = repath(ValidationError(field, message, value), prefix)
    expected = f"{prefix}.{field}" if prefix else field
    assert moved.field == expected
    assert str(moved) == f"{expected}: {message}"
    assert moved.value is value


def test_attempt_returns_the_value_or_records_the_error_under_the_prefix() -> None:
    found: list[ValidationError] = []
    assert attempt(found, "failureHandling", lambda: 3) == 3

    def fails() -> int:
        raise ValidationError("healthCheckTimeout", "must be >= 0", -1)

    assert attempt(found, "failureHandling", fails) is None
    assert [(p.field, p.value) for p in found] == [("failureHandling.healthCheckTimeout", -1)]


@given(st.dictionaries(st.sampled_from(["url", "urll", "name", "nmae", "zzz"]) | st.integers(), st.none()))
def test_unknown_keys_are_exactly_the_keys_not_in_the_schema(data: dict[Any, None]) -> None:
    known = ("url", "name")
    found = unknown_keys(data, known, "backends[0]")
    assert len(found) == len([key for key in data if key not in known])
    assert all(problem.field.startswith("backends[0]") for problem in found)
    assert all("unknown key" in str(problem) for problem in found)


@given(st.integers(min_value=-(10**15), max_value=10**15) | st.floats(allow_nan=False, allow_infinity=False))
def test_check_seconds_accepts_every_finite_number_as_a_float(value: float) -> None:
    checked = check_seconds("f", value)
    assert isinstance(checked, float)
    assert checked == value


@given(st.booleans() | st.text(max_size=3) | st.none() | st.sampled_from([math.inf, -math.inf, math.nan]))
def test_check_seconds_refuses_bools_text_and_non_finite_values(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_seconds("f", value)
    assert info.value.field == "f"


@given(st.integers(min_value=-100, max_value=100), st.integers(min_value=-5, max_value=5))
def test_check_count_is_integers_at_least_the_minimum(value: int, minimum: int) -> None:
    if value >= minimum:
        assert check_count("f", value, minimum) == value
    else:
        with pytest.raises(ValidationError, match=f"must be >= {minimum}"):
            check_count("f", value, minimum)
    with pytest.raises(ValidationError, match="must be an integer, got bool"):
        check_count("f", True, minimum)


# --------------------------------------------------------------------------- the secret map

entry_names = st.sampled_from(["TOKEN", "A=B", "", "X\n", "PATH"]) | st.integers(min_value=0, max_value=3)
entry_values = st.sampled_from([SECRET, f"{SECRET}\x00", f"{SECRET}\r\n", [SECRET], {"v": SECRET}, 7, True, None])


@given(st.dictionaries(entry_names, entry_values, max_size=5))
def test_secret_maps_keep_good_entries_and_never_show_a_value(raw: dict[Any, Any]) -> None:
    found: list[ValidationError] = []
    reader = MappingReader({"env": raw}, "backends[0]", found)
    pairs = reader.secret_map("env", forbidden="\x00\r\n")
    good = {name: value for name, value in raw.items() if _good_entry(name, value)}
    if len(good) == len(raw):
        assert found == []
        assert dict(pairs) == good
    else:
        assert pairs == ()
        assert reader.bad == {"env"}
        assert len(found) == len(raw) - len(good)
    for problem in found:
        assert problem.field.startswith("backends[0].env")
        assert problem.value is None
        assert SECRET not in f"{problem!s} {problem!r}"


def _good_entry(name: object, value: object) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and not any(char in name for char in "=\x00\r\n")
        and isinstance(value, str)
        and not any(char in value for char in "\x00\r\n")
    )
