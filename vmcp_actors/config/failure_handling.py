"""toolhive's ``failureHandling`` block: health-check timing, thresholds, circuit breaker, reporting interval.

The block is checked by the rules that use it -- :class:`HealthConfig` and
:class:`CircuitBreakerConfig` -- so each rule exists once; this module only collects
their verdicts so a config reports every problem in one run, each under its toolhive
key, and reads the block from YAML with a fallback for every bad value.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Mapping
from typing import Any, Final

import attrs

from vmcp_actors.config.durations import format_duration
from vmcp_actors.config.fields import ROOT_FIELD, attempt, describe, key_path, repath, unknown_keys
from vmcp_actors.config.health_settings import (
    DEFAULT_BREAKER_FAILURE_THRESHOLD,
    DEFAULT_BREAKER_OPEN_TIMEOUT,
    DEFAULT_DEGRADED_THRESHOLD,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    DEFAULT_UNHEALTHY_THRESHOLD,
    CircuitBreakerConfig,
    HealthConfig,
)
from vmcp_actors.config.reading import MappingReader
from vmcp_actors.errors import ConfigError, ValidationError

__all__ = [
    "DEFAULT_STATUS_REPORTING_INTERVAL",
    "FAILURE_KEYS",
    "FailureHandling",
    "PartialFailureMode",
    "parse_failure_handling",
]

#: toolhive's ``statusReportingInterval`` default (``config/defaults.go``, seconds).
DEFAULT_STATUS_REPORTING_INTERVAL: Final = 30.0

#: The block's keys in the order problems are listed (the order of toolhive's docs).
FAILURE_KEYS: Final = (
    "healthCheckInterval",
    "healthCheckTimeout",
    "unhealthyThreshold",
    "statusReportingInterval",
    "partialFailureMode",
    "circuitBreaker",
)
_BREAKER_KEYS: Final = ("enabled", "failureThreshold", "timeout")


class PartialFailureMode(enum.StrEnum):
    """toolhive's ``partialFailureMode``: whether one failed backend fails a request."""

    FAIL = "fail"
    BEST_EFFORT = "best_effort"


def _partial_failure_mode(value: object) -> PartialFailureMode:
    try:
        return PartialFailureMode(value) if isinstance(value, str) else PartialFailureMode("\x00")
    except ValueError:
        raise ValidationError(
            "partialFailureMode", f"must be fail or best_effort, got {describe(value)}", value
        ) from None


#: Marks a value whose parse already failed: the rules that need it are not checked.
_SKIP: Final = object()


def _health_rule_problems(path: str, interval: Any, timeout: Any, threshold: Any) -> list[ValidationError]:
    """Toolhive's failure-handling rules, delegated to ``HealthConfig`` so each exists once.

    ``HealthConfig`` stops at its first error; to report all of them each value is
    checked in a config where everything else is valid.  The timeout is checked against
    the real interval when that is valid, and otherwise against the largest float, so a
    bad interval does not also produce a misleading "timeout must be less than" error.
    """
    found: list[ValidationError] = []
    interval_ok = False
    if interval is not _SKIP:
        checked = attempt(found, path, lambda: HealthConfig(check_interval=interval, timeout=0.0))
        interval_ok = checked is not None
    if timeout is not _SKIP:
        reference = interval if interval_ok else sys.float_info.max
        attempt(found, path, lambda: HealthConfig(check_interval=reference, timeout=timeout))
    if threshold is not _SKIP:
        attempt(found, path, lambda: HealthConfig(unhealthy_threshold=threshold))
    return found


def _reporting_interval_problems(path: str, value: Any) -> list[ValidationError]:
    """``statusReportingInterval > 0``: a reporter setting, so it is not part of ``HealthConfig``."""
    field = key_path(path, "statusReportingInterval")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return [ValidationError(field, f"must be a finite number of seconds, got {describe(value)}", value)]
    if value <= 0:
        return [ValidationError(field, f"must be > 0, got {float(value)}s", value)]
    return []


def _dump_duration(value: object) -> object:
    """Go notation for a valid duration; anything else as it is (dumps must never raise)."""
    try:
        return format_duration(value)  # type: ignore[arg-type]
    except ValueError:
        return value


@attrs.frozen
class FailureHandling:
    """toolhive's ``failureHandling`` block; durations are seconds.

    Construction checks only the enum; the rest is checked by :meth:`problems`, like
    ``BackendSpec``, so a config can report all its problems at once.  The circuit
    breaker is a ``CircuitBreakerConfig``, which validates itself.
    """

    health_check_interval: float = DEFAULT_HEALTH_CHECK_INTERVAL
    health_check_timeout: float = DEFAULT_HEALTH_CHECK_TIMEOUT
    unhealthy_threshold: int = DEFAULT_UNHEALTHY_THRESHOLD
    status_reporting_interval: float = DEFAULT_STATUS_REPORTING_INTERVAL
    circuit_breaker: CircuitBreakerConfig = attrs.field(factory=CircuitBreakerConfig)
    partial_failure_mode: PartialFailureMode = attrs.field(
        default=PartialFailureMode.FAIL, converter=_partial_failure_mode
    )

    def problems(self, path: str = "failureHandling", skip: frozenset[str] = frozenset()) -> list[ValidationError]:
        """Every rule violation, each field named ``path.<toolhive key>``.

        Keys in ``skip`` (toolhive keys whose values already failed to parse) are not
        checked, so a bad value is reported once, not again through its fallback.
        """

        def value(key: str, current: object) -> object:
            return _SKIP if key in skip else current

        found = _health_rule_problems(
            path,
            value("healthCheckInterval", self.health_check_interval),
            value("healthCheckTimeout", self.health_check_timeout),
            value("unhealthyThreshold", self.unhealthy_threshold),
        )
        if "statusReportingInterval" not in skip:
            found.extend(_reporting_interval_problems(path, self.status_reporting_interval))
        if not isinstance(self.circuit_breaker, CircuitBreakerConfig):
            found.append(ValidationError(key_path(path, "circuitBreaker"), "must be a CircuitBreakerConfig", None))
        return found

    def health_config(self) -> HealthConfig:
        """The health monitor's config; the degraded threshold is fixed at 5s as in toolhive.

        Raises:
            ValidationError: the first rule violation, its field under ``failureHandling``.
        """
        try:
            return HealthConfig(
                check_interval=self.health_check_interval,
                timeout=self.health_check_timeout,
                unhealthy_threshold=self.unhealthy_threshold,
                degraded_threshold=DEFAULT_DEGRADED_THRESHOLD,
                circuit_breaker=self.circuit_breaker,
            )
        except ValidationError as exc:
            raise repath(exc, "failureHandling") from None

    @classmethod
    def from_dict(cls, data: object, path: str = "failureHandling") -> FailureHandling:
        """Parse and validate a ``failureHandling`` mapping.

        Raises:
            ConfigError: listing every problem.
        """
        found: list[ValidationError] = []
        handling, skip = parse_failure_handling(data, path, found)
        found.extend(handling.problems(path, skip))
        if found:
            raise ConfigError(found)
        return handling

    def dump(self) -> dict[str, Any]:
        """The block as a user would write it, durations in Go notation."""
        breaker = self.circuit_breaker
        return {
            "healthCheckInterval": _dump_duration(self.health_check_interval),
            "healthCheckTimeout": _dump_duration(self.health_check_timeout),
            "unhealthyThreshold": self.unhealthy_threshold,
            "statusReportingInterval": _dump_duration(self.status_reporting_interval),
            "partialFailureMode": str(self.partial_failure_mode),
            "circuitBreaker": {
                "enabled": breaker.enabled,
                "failureThreshold": breaker.failure_threshold,
                "timeout": _dump_duration(breaker.open_timeout),
            },
        }


def _parse_breaker(data: object, handling_path: str, found: list[ValidationError]) -> CircuitBreakerConfig:
    """The ``circuitBreaker`` block, checked here because ``CircuitBreakerConfig`` validates itself.

    Like ``HealthConfig``, each value is checked in an otherwise valid config so that
    every problem is reported; the timeout's rule depends on ``enabled`` only.
    """
    path = key_path(handling_path, "circuitBreaker")
    if data is None:
        return CircuitBreakerConfig()
    if not isinstance(data, Mapping):
        found.append(ValidationError(path, f"must be a mapping, got {type(data).__name__}", None))
        return CircuitBreakerConfig()
    found.extend(unknown_keys(data, _BREAKER_KEYS, path))
    reader = MappingReader(data, path, found)
    enabled: Any = data.get("enabled")
    enabled = False if enabled is None else enabled
    threshold: Any = data.get("failureThreshold")
    threshold = DEFAULT_BREAKER_FAILURE_THRESHOLD if threshold is None else threshold
    timeout = reader.duration("timeout", DEFAULT_BREAKER_OPEN_TIMEOUT)
    before = len(found)
    enabled_ok = attempt(found, handling_path, lambda: CircuitBreakerConfig(enabled=enabled)) is not None
    attempt(found, handling_path, lambda: CircuitBreakerConfig(failure_threshold=threshold))
    if "timeout" not in reader.bad:
        known_enabled = enabled if enabled_ok else False
        attempt(found, handling_path, lambda: CircuitBreakerConfig(enabled=known_enabled, open_timeout=timeout))
    if reader.bad or len(found) > before:
        return CircuitBreakerConfig()
    breaker = attempt(
        found,
        handling_path,
        lambda: CircuitBreakerConfig(enabled=enabled, failure_threshold=threshold, open_timeout=timeout),
    )
    return CircuitBreakerConfig() if breaker is None else breaker


def parse_failure_handling(
    data: object, path: str, found: list[ValidationError]
) -> tuple[FailureHandling, frozenset[str]]:
    """The block with fallbacks for bad values, and the keys whose rules must be skipped.

    Problems are appended to ``found``.  ``unhealthyThreshold`` is passed through
    unchecked: its type and range are rules of ``HealthConfig``, reported by
    :meth:`FailureHandling.problems`.
    """
    if data is None:
        return FailureHandling(), frozenset()
    if not isinstance(data, Mapping):
        found.append(ValidationError(path or ROOT_FIELD, f"must be a mapping, got {type(data).__name__}", None))
        return FailureHandling(), frozenset(FAILURE_KEYS)
    found.extend(unknown_keys(data, FAILURE_KEYS, path))
    reader = MappingReader(data, path, found)
    threshold: Any = data.get("unhealthyThreshold")
    handling = FailureHandling(
        health_check_interval=reader.duration("healthCheckInterval", DEFAULT_HEALTH_CHECK_INTERVAL),
        health_check_timeout=reader.duration("healthCheckTimeout", DEFAULT_HEALTH_CHECK_TIMEOUT),
        unhealthy_threshold=DEFAULT_UNHEALTHY_THRESHOLD if threshold is None else threshold,
        status_reporting_interval=reader.duration("statusReportingInterval", DEFAULT_STATUS_REPORTING_INTERVAL),
        circuit_breaker=_parse_breaker(data.get("circuitBreaker"), path, found),
        partial_failure_mode=reader.convert(
            "partialFailureMode", _partial_failure_mode, PartialFailureMode.FAIL, prefix=path
        ),
    )
    return handling, frozenset(reader.bad)
