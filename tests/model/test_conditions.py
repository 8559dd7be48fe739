"""The condition vocabulary: every type and reason is one the CRD accepts, and one object wherever it is imported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vmcp_actors.health import status_builder
from vmcp_actors.model import conditions
from vmcp_actors.model.status import Condition, ConditionStatus

TYPES = [name for name in conditions.__all__ if name.startswith("CONDITION_")]
REASONS = [name for name in conditions.__all__ if name.startswith("REASON_")]


@pytest.mark.parametrize("name", TYPES)
def test_each_condition_type_is_valid_in_the_crd(name: str) -> None:
    condition_type = getattr(conditions, name)
    condition = Condition(condition_type, ConditionStatus.TRUE, "Checked", last_transition_time=datetime.now(UTC))
    assert condition.type == condition_type


@pytest.mark.parametrize("name", REASONS)
def test_each_reason_is_valid_in_the_crd(name: str) -> None:
    reason = getattr(conditions, name)
    condition = Condition("Ready", ConditionStatus.TRUE, reason, last_transition_time=datetime.now(UTC))
    assert condition.reason == reason


@pytest.mark.parametrize("name", TYPES + REASONS)
def test_the_status_builder_still_offers_each_name(name: str) -> None:
    assert getattr(status_builder, name) == getattr(conditions, name)
