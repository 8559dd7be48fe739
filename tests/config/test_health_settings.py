"""The health settings' defaults: defined once, and the same whichever way a config is built."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.health_settings import (
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    CircuitBreakerConfig,
    HealthConfig,
)
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.health import rules


def test_an_empty_failure_handling_block_makes_the_default_health_config() -> None:
    assert FailureHandling().health_config() == HealthConfig()
    assert RuntimeConfig.from_dict({}).failure_handling.health_config() == HealthConfig()


def test_the_probe_timeout_and_the_health_check_timeout_are_one_default() -> None:
    assert LifecyclePolicy().probe_timeout == DEFAULT_HEALTH_CHECK_TIMEOUT == HealthConfig().timeout


def test_health_rules_still_offer_the_moved_names() -> None:
    assert rules.HealthConfig is HealthConfig
    assert rules.CircuitBreakerConfig is CircuitBreakerConfig
    assert rules.DEFAULT_TIMEOUT == DEFAULT_HEALTH_CHECK_TIMEOUT


@given(
    st.floats(min_value=0.001, max_value=1e6),
    st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    st.integers(min_value=1, max_value=100),
)
def test_failure_handling_within_the_rules_makes_the_matching_health_config(
    interval: float, timeout_share: float, threshold: int
) -> None:
    handling = FailureHandling(
        health_check_interval=interval, health_check_timeout=interval * timeout_share, unhealthy_threshold=threshold
    )
    assert handling.problems() == []
    config = handling.health_config()
    assert (config.check_interval, config.timeout, config.unhealthy_threshold) == (
        interval,
        interval * timeout_share,
        threshold,
    )
