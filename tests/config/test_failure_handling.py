"""The failureHandling block: toolhive's values and rules, each problem under its key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config.support import (
    only_problem,
    problems_of,
)
from vmcp_actors.config.failure_handling import FailureHandling, PartialFailureMode
from vmcp_actors.config.health_settings import CircuitBreakerConfig, HealthConfig
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError, ValidationError

# --------------------------------------------------------------------------- values


def test_failure_handling_values_and_the_health_config_they_make() -> None:
    config = RuntimeConfig.from_dict(
        {
            "name": "edge-vmcp",
            "failureHandling": {
                "healthCheckInterval": "1m",
                "healthCheckTimeout": 0,
                "unhealthyThreshold": 5,
                "statusReportingInterval": 15,
                "partialFailureMode": "best_effort",
                "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "1m30s"},
            },
        }
    )
    handling = config.failure_handling
    assert config.name == "edge-vmcp"
    assert handling.partial_failure_mode is PartialFailureMode.BEST_EFFORT
    assert handling.status_reporting_interval == 15.0
    assert handling.health_config() == HealthConfig(
        check_interval=60.0,
        timeout=0.0,
        unhealthy_threshold=5,
        degraded_threshold=5.0,
        circuit_breaker=CircuitBreakerConfig(enabled=True, failure_threshold=2, open_timeout=90.0),
    )


def test_a_disabled_breakers_leftover_timeout_is_not_checked_like_toolhive() -> None:
    config = RuntimeConfig.from_dict({"failureHandling": {"circuitBreaker": {"enabled": False, "timeout": "1ms"}}})
    assert config.failure_handling.circuit_breaker.open_timeout == 0.001


# --------------------------------------------------------------------------- failure handling rules


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        ({"healthCheckInterval": "0s"}, "healthCheckInterval", "must be > 0, got 0.0s"),
        ({"healthCheckInterval": -30}, "healthCheckInterval", "must be > 0, got -30.0s"),
        ({"healthCheckTimeout": -1}, "healthCheckTimeout", "must be >= 0, got -1.0s"),
        (
            {"healthCheckInterval": "10s", "healthCheckTimeout": "10s"},
            "healthCheckTimeout",
            "must be less than healthCheckInterval to prevent checks from queuing up (got 10.0s, interval 10.0s)",
        ),
        ({"unhealthyThreshold": 0}, "unhealthyThreshold", "must be >= 1, got 0"),
        ({"unhealthyThreshold": "3"}, "unhealthyThreshold", "must be an integer, got str"),
        ({"unhealthyThreshold": True}, "unhealthyThreshold", "must be an integer, got bool"),
        ({"statusReportingInterval": "0s"}, "statusReportingInterval", "must be > 0, got 0.0s"),
        ({"statusReportingInterval": -1}, "statusReportingInterval", "must be > 0, got -1.0s"),
        ({"partialFailureMode": "sometimes"}, "partialFailureMode", "must be fail or best_effort, got str 'sometimes'"),
        ({"partialFailureMode": 1}, "partialFailureMode", "must be fail or best_effort, got int 1"),
        ({"circuitBreaker": {"failureThreshold": 0}}, "circuitBreaker.failureThreshold", "must be >= 1, got 0"),
        (
            {"circuitBreaker": {"enabled": True, "timeout": "500ms"}},
            "circuitBreaker.timeout",
            "must be >= 1s, got 0.5s",
        ),
        ({"circuitBreaker": {"enabled": "yes"}}, "circuitBreaker.enabled", "must be a boolean"),
        ({"circuitBreaker": {"timeout": "1 m"}}, "circuitBreaker.timeout", "invalid duration '1 m'"),
        ({"circuitBreaker": [1]}, "circuitBreaker", "must be a mapping, got list"),
        ({"healthCheckInterval": "thirty"}, "healthCheckInterval", "invalid duration 'thirty'"),
    ],
)
def test_each_failure_handling_rule_names_its_field_and_value(block: dict[str, Any], field: str, message: str) -> None:
    problem = only_problem({"failureHandling": block})
    assert problem.field == f"failureHandling.{field}"
    assert str(problem).startswith(f"failureHandling.{field}: {message}")


def test_the_failure_handling_block_must_be_a_mapping() -> None:
    problem = only_problem({"failureHandling": "30s"})
    assert (problem.field, str(problem)) == ("failureHandling", "failureHandling: must be a mapping, got str")


def test_every_failure_handling_problem_is_reported_at_once_in_key_order() -> None:
    problems = problems_of(
        {
            "failureHandling": {
                "circuitBreaker": {"enabled": True, "failureThreshold": 0, "timeout": 0},
                "partialFailureMode": "x",
                "healthCheckInterval": 0,
                "healthCheckTimeout": -1,
                "unhealthyThreshold": 0,
                "statusReportingInterval": 0,
            }
        }
    )
    assert [p.field.removeprefix("failureHandling.") for p in problems] == [
        "healthCheckInterval",
        "healthCheckTimeout",
        "unhealthyThreshold",
        "statusReportingInterval",
        "partialFailureMode",
        "circuitBreaker.failureThreshold",
        "circuitBreaker.timeout",
    ]


def test_a_bad_interval_does_not_also_blame_the_timeout() -> None:
    problem = only_problem({"failureHandling": {"healthCheckInterval": "soon", "healthCheckTimeout": "45s"}})
    assert problem.field == "failureHandling.healthCheckInterval"
    problem = only_problem({"failureHandling": {"healthCheckInterval": 0, "healthCheckTimeout": "45s"}})
    assert problem.field == "failureHandling.healthCheckInterval"


def test_failure_handling_built_directly_reports_the_same_rules_and_health_config_repaths() -> None:
    handling = FailureHandling(health_check_interval=5.0, health_check_timeout=5.0, status_reporting_interval=0)
    assert [p.field for p in handling.problems()] == [
        "failureHandling.healthCheckTimeout",
        "failureHandling.statusReportingInterval",
    ]
    with pytest.raises(ValidationError) as info:
        handling.health_config()
    assert info.value.field == "failureHandling.healthCheckTimeout"
    with pytest.raises(ConfigError) as config_info:
        RuntimeConfig(failure_handling=handling).validate("direct")
    assert len(config_info.value.problems) == 2
    with pytest.raises(ValidationError, match="partialFailureMode: must be fail or best_effort"):
        FailureHandling(partial_failure_mode="never")


def test_failure_handling_from_dict_alone() -> None:
    handling = FailureHandling.from_dict({"healthCheckInterval": "45s"})
    assert handling.health_check_interval == 45.0
    with pytest.raises(ConfigError) as info:
        FailureHandling.from_dict({"unhealthyThreshold": -1, "healthCheckIntervall": "1s"})
    assert [p.field for p in info.value.problems] == [
        "failureHandling.healthCheckIntervall",
        "failureHandling.unhealthyThreshold",
    ]
