"""Properties of the status codec: it round-trips every valid status and names the
field of every invalid one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import statuses
from vmcp_actors.errors import ValidationError
from vmcp_actors.model.codec import decode_status, encode_status
from vmcp_actors.model.status import Status


@given(statuses())
def test_decode_inverts_encode(status: Status) -> None:
    assert decode_status(encode_status(status)) == status


@given(statuses())
def test_encoding_survives_a_json_round_trip(status: Status) -> None:
    wire = json.loads(json.dumps(encode_status(status)))
    assert decode_status(wire) == status


@given(statuses())
def test_encoding_omits_empty_values_like_go(status: Status) -> None:
    encoded = encode_status(status)
    for key, value in encoded.items():
        assert value not in ("", 0, [], None), key
    for backend in encoded.get("discoveredBackends", []):
        for key, value in backend.items():
            assert value not in ("", 0, None), key


# Each mutation breaks one field of an otherwise valid encoded status, and says which
# field the error must name.
_MUTATIONS: list[tuple[str, Any, str]] = [
    ("phase", "Running", "phase"),
    ("phase", 3, "phase"),
    ("message", "x" * 32769, "message"),
    ("message", 12, "message"),
    ("backendCount", -1, "backendCount"),
    ("backendCount", 2**31, "backendCount"),
    ("backendCount", "7", "backendCount"),
    ("observedGeneration", -5, "observedGeneration"),
    ("timestamp", "yesterday", "timestamp"),
    ("timestamp", "2026-01-01T00:00:00", "timestamp"),
    ("conditions", "Ready", "conditions"),
    ("discoveredBackends", {"name": "a"}, "discoveredBackends"),
]


@pytest.mark.parametrize(("key", "bad", "field"), _MUTATIONS)
def test_top_level_mutations_name_the_field(key: str, bad: object, field: str) -> None:
    data: dict[str, Any] = {"phase": "Ready", "timestamp": "2026-01-01T00:00:00Z"}
    data[key] = bad
    with pytest.raises(ValidationError) as info:
        decode_status(data)
    assert info.value.field.startswith(field)


_CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "AllBackendsRoutable",
    "message": "ok",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}

_CONDITION_MUTATIONS: list[tuple[str, Any, str]] = [
    ("reason", "1starts-with-digit", "reason"),
    ("reason", "has space", "reason"),
    ("reason", "endswith,", "reason"),
    ("reason", "", "reason"),
    ("reason", "A" * 1025, "reason"),
    ("message", "m" * 32769, "message"),
    ("status", "Maybe", "status"),
    ("type", "", "type"),
    ("type", "bad type!", "type"),
    ("type", "T" * 317, "type"),
    ("lastTransitionTime", None, "lastTransitionTime"),
    ("lastTransitionTime", "not a time", "lastTransitionTime"),
    ("observedGeneration", -1, "observedGeneration"),
]


@pytest.mark.parametrize(("key", "bad", "field"), _CONDITION_MUTATIONS)
def test_condition_mutations_name_the_field(key: str, bad: object, field: str) -> None:
    condition: dict[str, object] = dict(_CONDITION)
    condition[key] = bad
    with pytest.raises(ValidationError) as info:
        decode_status({"phase": "Ready", "conditions": [condition]})
    assert info.value.field.endswith(field) or f".{field}" in info.value.field
    assert field in str(info.value)


def test_duplicate_backend_names_are_rejected_naming_the_entry() -> None:
    with pytest.raises(ValidationError) as info:
        decode_status({"phase": "Ready", "discoveredBackends": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})
    assert info.value.field == "discoveredBackends[2].name"
    assert "duplicate" in str(info.value)


def test_duplicate_condition_types_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        decode_status({"phase": "Ready", "conditions": [_CONDITION, _CONDITION]})
    assert info.value.field == "conditions[1].type"


_BACKEND_MUTATIONS: list[tuple[str, Any, str]] = [
    ("name", "", "name"),
    ("name", None, "name"),
    ("circuitBreakerState", "ajar", "circuitBreakerState"),
    ("consecutiveFailures", -2, "consecutiveFailures"),
    ("consecutiveFailures", 1.5, "consecutiveFailures"),
    ("lastHealthCheck", "noon", "lastHealthCheck"),
    ("url", 42, "url"),
]


@pytest.mark.parametrize(("key", "bad", "field"), _BACKEND_MUTATIONS)
def test_backend_mutations_name_the_field(key: str, bad: object, field: str) -> None:
    backend: dict[str, Any] = {"name": "files"}
    backend[key] = bad
    with pytest.raises(ValidationError) as info:
        decode_status({"phase": "Ready", "discoveredBackends": [backend]})
    assert field in info.value.field


@given(st.dictionaries(st.text(max_size=20), st.none() | st.integers() | st.text(max_size=5) | st.lists(st.none())))
def test_arbitrary_json_objects_either_decode_or_raise_validation_error(data: dict[str, Any]) -> None:
    try:
        status = decode_status(data)
    except ValidationError as error:
        failure: ValidationError | None = error
    else:
        failure = None
        assert decode_status(encode_status(status)) == status
    assert failure is None or failure.field
