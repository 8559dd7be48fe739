"""The health monitor's settings and their defaults: the one definition of every health number.

They are configuration -- the ``failureHandling`` block a user writes ends up here --
so they live with the config, below the health stage that reads them: the config can
build and check a :class:`HealthConfig` without importing any health rule, and every
stage that needs a default (the backend's probe timeout, the health monitor, the
config parser) takes it from this module.  The values are toolhive's
``DefaultConfig()``, ``config/defaults.go`` and the CRD's kubebuilder defaults.
"""

from __future__ import annotations

from typing import Final

import attrs

from vmcp_actors.config.fields import check_count, check_seconds
from vmcp_actors.errors import ValidationError

__all__ = [
    "DEFAULT_BREAKER_FAILURE_THRESHOLD",
    "DEFAULT_BREAKER_OPEN_TIMEOUT",
    "DEFAULT_DEGRADED_THRESHOLD",
    "DEFAULT_HEALTH_CHECK_INTERVAL",
    "DEFAULT_HEALTH_CHECK_TIMEOUT",
    "DEFAULT_UNHEALTHY_THRESHOLD",
    "CircuitBreakerConfig",
    "HealthConfig",
]

#: ``healthCheckInterval`` (seconds).
DEFAULT_HEALTH_CHECK_INTERVAL: Final = 30.0
#: ``healthCheckTimeout`` (seconds): how long one health probe may take.
DEFAULT_HEALTH_CHECK_TIMEOUT: Final = 10.0
#: ``unhealthyThreshold``: consecutive failed probes before a backend is unhealthy.
DEFAULT_UNHEALTHY_THRESHOLD: Final = 3
#: A probe slower than this (seconds) marks the backend degraded; fixed in toolhive.
DEFAULT_DEGRADED_THRESHOLD: Final = 5.0
#: ``circuitBreaker.failureThreshold``.
DEFAULT_BREAKER_FAILURE_THRESHOLD: Final = 5
#: ``circuitBreaker.timeout`` (seconds): how long an open breaker waits before testing recovery.
DEFAULT_BREAKER_OPEN_TIMEOUT: Final = 60.0


@attrs.frozen
class CircuitBreakerConfig:
    """toolhive ``CircuitBreakerConfig``; ``open_timeout`` is its ``timeout`` (seconds).

    Like toolhive's validator, the open timeout is only checked while the breaker is
    enabled: a disabled breaker's leftover values must not block startup.  The failure
    threshold is always checked because the CRD schema gives it ``minimum: 1``.
    """

    enabled: bool = False
    failure_threshold: int = DEFAULT_BREAKER_FAILURE_THRESHOLD
    open_timeout: float = DEFAULT_BREAKER_OPEN_TIMEOUT

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValidationError("circuitBreaker.enabled", "must be a boolean", self.enabled)
        check_count("circuitBreaker.failureThreshold", self.failure_threshold, 1)
        timeout = check_seconds("circuitBreaker.timeout", self.open_timeout)
        if self.enabled and timeout < 1:
            raise ValidationError("circuitBreaker.timeout", f"must be >= 1s, got {timeout}s", timeout)
        object.__setattr__(self, "open_timeout", timeout)


@attrs.frozen
class HealthConfig:
    """The health monitor's settings (toolhive ``MonitorConfig`` plus its YAML validator).

    Errors name the field by its toolhive YAML key so a user can find it in the
    ``failureHandling`` block they wrote.  ``degraded_threshold`` is not user-facing in
    toolhive (always 5s); it is configurable here only for tests and embedders.
    """

    check_interval: float = DEFAULT_HEALTH_CHECK_INTERVAL
    timeout: float = DEFAULT_HEALTH_CHECK_TIMEOUT
    unhealthy_threshold: int = DEFAULT_UNHEALTHY_THRESHOLD
    degraded_threshold: float = DEFAULT_DEGRADED_THRESHOLD
    circuit_breaker: CircuitBreakerConfig = attrs.field(factory=CircuitBreakerConfig)

    def __attrs_post_init__(self) -> None:
        interval = check_seconds("healthCheckInterval", self.check_interval)
        if interval <= 0:
            raise ValidationError("healthCheckInterval", f"must be > 0, got {interval}s", interval)
        timeout = check_seconds("healthCheckTimeout", self.timeout)
        if timeout < 0:
            raise ValidationError("healthCheckTimeout", f"must be >= 0, got {timeout}s", timeout)
        if timeout > 0 and timeout >= interval:
            raise ValidationError(
                "healthCheckTimeout",
                "must be less than healthCheckInterval to prevent checks from queuing up "
                f"(got {timeout}s, interval {interval}s)",
                timeout,
            )
        check_count("unhealthyThreshold", self.unhealthy_threshold, 1)
        degraded = check_seconds("degradedThreshold", self.degraded_threshold)
        if degraded < 0:
            raise ValidationError("degradedThreshold", f"must be >= 0 (0 disables it), got {degraded}s", degraded)
        if not isinstance(self.circuit_breaker, CircuitBreakerConfig):
            raise ValidationError("circuitBreaker", "must be a CircuitBreakerConfig", self.circuit_breaker)
        object.__setattr__(self, "check_interval", interval)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "degraded_threshold", degraded)
