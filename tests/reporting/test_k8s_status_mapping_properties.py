"""``desired_status``: toolhive's CRD mapping, checked for any stored object and any status.

The properties are the ones a second writer (the operator) relies on: what the runtime
does not own survives untouched, ``lastTransitionTime`` moves only on a flip, the runtime's
own conditions disappear when it stops reporting them, and writing the result again
changes nothing (which is what lets the reporter skip the request).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import discovered_backends, statuses, times
from vmcp_actors.model.codec import encode_backend, encode_condition
from vmcp_actors.model.status import Condition, ConditionStatus, Phase, Status, format_time, parse_time
from vmcp_actors.reporting.kubernetes.mapping import RUNTIME_CONDITION_TYPES, desired_status

RUNTIME_FIELDS = {"phase", "message", "backendCount", "discoveredBackends", "observedGeneration", "conditions"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
foreign_keys = st.sampled_from(["url", "authzConfigHash", "oidcConfigHash", "telemetryConfigHash", "x", "future"])


@st.composite
def stored_conditions_of(draw: st.DrawFn, condition_type: str) -> dict[str, Any]:
    """A stored condition, as any writer may have left it (cheaper to draw than a ``Condition``)."""
    condition = Condition(
        condition_type,
        draw(st.sampled_from(list(ConditionStatus))),
        draw(st.sampled_from(["AllBackendsRoutable", "NoRoutableBackends", "GroupRefIsValid", "Pending"])),
        draw(st.text(max_size=8)),
        last_transition_time=draw(times),
        observed_generation=draw(st.integers(min_value=0, max_value=9)),
    )
    return encode_condition(condition)


@st.composite
def stored_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A VirtualMCPServer as an API server could return it: any mix of writers' fields."""
    status: dict[str, Any] = draw(st.dictionaries(foreign_keys, json_values, max_size=4))
    if draw(st.booleans()):  # a status the runtime (or the operator) wrote before
        status["phase"] = draw(st.sampled_from(list(Phase))).value
        status["message"] = draw(st.text(max_size=10))
        status["discoveredBackends"] = [encode_backend(draw(discovered_backends(n))) for n in ("a", "b")]
    types = draw(
        st.lists(
            st.sampled_from(["Ready", "Degraded", "BackendsDiscovered", "GroupRefValidated", "AuthConfigured", "a/B"]),
            unique=True,
            max_size=6,
        )
    )
    if types:
        status["conditions"] = [draw(stored_conditions_of(t)) for t in types]
    metadata: dict[str, Any] = {"name": "vmcp", "namespace": "ns", "resourceVersion": "1"}
    generation = draw(st.none() | st.integers(min_value=1, max_value=2**40))
    if generation is not None:
        metadata["generation"] = generation
    obj: dict[str, Any] = {"metadata": metadata}
    keep_empty_status = draw(st.booleans())
    if status or keep_empty_status:
        obj["status"] = status
    return obj


def stored_conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def by_type(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["type"]: item for item in items}


@given(stored_objects(), statuses(), times)
def test_what_the_runtime_does_not_own_survives_untouched(obj: dict[str, Any], status: Status, now: datetime) -> None:
    original = copy.deepcopy(obj)
    result = desired_status(obj, status, now)
    assert obj == original
    stored = obj.get("status") or {}
    for key, value in stored.items():
        if key not in RUNTIME_FIELDS:
            assert result[key] == value
    reported_types = {c.type for c in status.conditions}
    foreign = [c for c in stored_conditions(obj) if c["type"] not in (*RUNTIME_CONDITION_TYPES, *reported_types)]
    kept = [c for c in result.get("conditions", []) if c["type"] in {f["type"] for f in foreign}]
    assert kept == foreign, "foreign conditions must survive unchanged and in order"


@given(stored_objects(), statuses(), times)
def test_the_runtime_fields_say_exactly_what_was_reported(obj: dict[str, Any], status: Status, now: datetime) -> None:
    result = desired_status(obj, status, now)
    generation = obj["metadata"].get("generation", 0)
    assert result["phase"] == status.phase.value
    assert result.get("message", "") == status.message
    assert result.get("backendCount", 0) == status.backend_count
    assert result.get("discoveredBackends", []) == [encode_backend(b) for b in status.discovered_backends]
    assert result.get("observedGeneration", 0) == generation
    written = by_type(result.get("conditions", []))
    for condition in status.conditions:
        out = written[condition.type]
        assert (out["status"], out["reason"], out["message"]) == (
            condition.status.value,
            condition.reason,
            condition.message,
        )
        assert out.get("observedGeneration", 0) == generation


@given(stored_objects(), statuses(), times)
def test_transition_time_moves_only_when_the_status_flips(obj: dict[str, Any], status: Status, now: datetime) -> None:
    result = by_type(desired_status(obj, status, now).get("conditions", []))
    before = by_type(stored_conditions(obj))
    for condition in status.conditions:
        out = result[condition.type]["lastTransitionTime"]
        previous = before.get(condition.type)
        if previous is None:
            assert out == format_time(condition.last_transition_time)
        elif previous["status"] == condition.status.value:
            assert out == previous["lastTransitionTime"]
        else:
            stored_at = parse_time(previous["lastTransitionTime"])
            assert parse_time(out) >= stored_at, "a flip never moves the time backwards"
            if condition.last_transition_time >= stored_at:
                assert out == format_time(condition.last_transition_time)
            else:
                assert out == format_time(max(now, stored_at))


@given(stored_objects(), statuses(), times)
def test_runtime_conditions_absent_from_the_status_are_removed(
    obj: dict[str, Any], status: Status, now: datetime
) -> None:
    result = desired_status(obj, status, now)
    reported = {c.type for c in status.conditions}
    present = {c["type"] for c in result.get("conditions", [])}
    assert not (set(RUNTIME_CONDITION_TYPES) - reported) & present
    assert reported <= present


@given(stored_objects(), statuses(), times, times)
def test_applying_twice_is_applying_once(obj: dict[str, Any], status: Status, now: datetime, later: datetime) -> None:
    once = desired_status(obj, status, now)
    twice = desired_status({**obj, "status": once}, status, later)
    assert twice == once
