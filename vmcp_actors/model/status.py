"""The vMCP status model: frozen values that can only hold what the CRD accepts.

These types mirror toolhive's ``vmcp.Status`` and the ``VirtualMCPServer`` status
subresource field by field, so a status built here can be written to the CRD, to a
file or to a log without translation.  They are frozen attrs classes holding tuples:
a status is a value that actors pass around, never something one of them mutates.

Validation happens at construction, with the same limits the CRD's OpenAPI schema
enforces, so a bad status fails in the process that built it (with the field named)
instead of as an HTTP 422 from the API server minutes later.  The JSON form is in
:mod:`vmcp_actors.model.codec`; the condition types and reasons in
:mod:`vmcp_actors.model.conditions`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs

from vmcp_actors.errors import ValidationError

__all__ = [
    "BackendHealth",
    "CircuitState",
    "Condition",
    "ConditionStatus",
    "DiscoveredBackend",
    "Phase",
    "Status",
    "format_time",
    "parse_time",
]

#: The CRD pattern for ``metav1.Condition.reason`` (apimachinery's validation).
REASON_PATTERN: Final = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
REASON_MAX_LENGTH: Final = 1024
MESSAGE_MAX_LENGTH: Final = 32768
#: The CRD pattern for ``metav1.Condition.type``: an optional DNS-subdomain prefix and a name.
CONDITION_TYPE_PATTERN: Final = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_TYPE_MAX_LENGTH: Final = 316
INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1


class Phase(enum.StrEnum):
    """The vMCP's overall phase (toolhive ``vmcp.Phase`` and the CRD enum)."""

    PENDING = "Pending"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"

    @classmethod
    def from_crd(cls, value: object) -> Phase:
        """Map a phase for the Kubernetes object, turning anything unknown into Pending.

        This leniency exists only here because toolhive's ``convertPhase`` does it when it
        writes the CRD; everywhere else an unknown phase is an error.
        """
        try:
            return cls(str(value))
        except ValueError:
            return cls.PENDING


class BackendHealth(enum.StrEnum):
    """A backend's health as the health monitor sees it (toolhive ``BackendHealthStatus``)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"
    UNAUTHENTICATED = "unauthenticated"

    @property
    def crd_status(self) -> str:
        """The value the CRD's ``discoveredBackends[].status`` uses (``ToCRDStatus``)."""
        return _CRD_STATUS[self]

    @property
    def routable(self) -> bool:
        """Whether requests may be routed to the backend: only a healthy one.

        toolhive's ``Routable()`` also counts unauthenticated, a stop-gap its TODO #4920
        says will be reverted; an unauthenticated backend serves nothing, so not here.
        """
        return self is BackendHealth.HEALTHY


_CRD_STATUS: Final[Mapping[BackendHealth, str]] = {
    BackendHealth.HEALTHY: "ready",
    BackendHealth.DEGRADED: "degraded",
    BackendHealth.UNHEALTHY: "unavailable",
    BackendHealth.UNKNOWN: "unknown",
    BackendHealth.UNAUTHENTICATED: "unauthenticated",
}


class ConditionStatus(enum.StrEnum):
    """``metav1.ConditionStatus``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class CircuitState(enum.StrEnum):
    """The circuit breaker states the CRD's ``circuitBreakerState`` enum allows."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


# --------------------------------------------------------------------------- helpers

_E = TypeVar("_E", bound=enum.Enum)


def _convert_enum(enum_type: type[_E], field: str, value: object) -> _E:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise ValidationError(field, f"must be one of {allowed}, got {value!r}", value) from None


def _convert_time(field: str, value: object) -> datetime:
    if isinstance(value, str):
        return parse_time(value, field)
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, got {type(value).__name__}", value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must be timezone-aware (naive datetimes are ambiguous)", value)
    # The CRD stores metav1.Time: RFC 3339 in UTC at second precision.
    return value.astimezone(UTC).replace(microsecond=0)


# attrs converters must be named functions for the type checker, one per field, so each
# error names its own field.


def _to_phase(value: object) -> Phase:
    return _convert_enum(Phase, "phase", value)


def _to_condition_status(value: object) -> ConditionStatus:
    return _convert_enum(ConditionStatus, "condition.status", value)


def _to_circuit_state(value: object) -> CircuitState | None:
    return None if value is None else _convert_enum(CircuitState, "discoveredBackend.circuitBreakerState", value)


def _to_transition_time(value: object) -> datetime:
    if value is None:
        raise ValidationError("condition.lastTransitionTime", "is required", value)
    return _convert_time("condition.lastTransitionTime", value)


def _to_last_health_check(value: object) -> datetime | None:
    return None if value is None else _convert_time("discoveredBackend.lastHealthCheck", value)


def _to_circuit_last_changed(value: object) -> datetime | None:
    return None if value is None else _convert_time("discoveredBackend.circuitLastChanged", value)


def _to_timestamp(value: object) -> datetime | None:
    return None if value is None else _convert_time("timestamp", value)


def _to_tuple(field: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError(field, f"must be a sequence, got {type(value).__name__}", value)
    return tuple(value)


def _to_conditions(value: object) -> tuple[Condition, ...]:
    return _to_tuple("conditions", value)


def _to_backends(value: object) -> tuple[DiscoveredBackend, ...]:
    return _to_tuple("discoveredBackends", value)


def check_str(field: str, value: object, *, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}", value)
    if max_length is not None and len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}", value)
    return value


def check_int(field: str, value: object, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}", value)
    if value < 0 or value > maximum:
        raise ValidationError(field, f"must be between 0 and {maximum}, got {value}", value)
    return value


def parse_time(value: str, field: str = "time") -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime at second precision."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"must be an RFC 3339 timestamp, got {value!r}", value) from None
    if parsed.tzinfo is None:
        raise ValidationError(field, f"must carry a UTC offset (RFC 3339), got {value!r}", value)
    return parsed.astimezone(UTC).replace(microsecond=0)


def format_time(value: datetime) -> str:
    """Format a datetime the way ``metav1.Time`` marshals: RFC 3339, UTC, whole seconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- types


@attrs.frozen
class Condition:
    """A ``metav1.Condition``; validated against the CRD's condition schema."""

    type: str
    status: ConditionStatus = attrs.field(converter=_to_condition_status)
    reason: str
    message: str = ""
    last_transition_time: datetime = attrs.field(converter=_to_transition_time, kw_only=True)
    observed_generation: int = attrs.field(default=0, kw_only=True)

    def __attrs_post_init__(self) -> None:
        check_str("condition.type", self.type, max_length=CONDITION_TYPE_MAX_LENGTH)
        if not CONDITION_TYPE_PATTERN.match(self.type):
            raise ValidationError(
                "condition.type", f"must match {CONDITION_TYPE_PATTERN.pattern}, got {self.type!r}", self.type
            )
        field = f"condition[{self.type}]"
        check_str(f"{field}.reason", self.reason, max_length=REASON_MAX_LENGTH)
        if not REASON_PATTERN.match(self.reason):
            raise ValidationError(
                f"{field}.reason", f"must match {REASON_PATTERN.pattern}, got {self.reason!r}", self.reason
            )
        check_str(f"{field}.message", self.message, max_length=MESSAGE_MAX_LENGTH)
        check_int(f"{field}.observedGeneration", self.observed_generation, maximum=INT64_MAX)


@attrs.frozen
class DiscoveredBackend:
    """One entry of ``status.discoveredBackends`` (toolhive ``vmcp.DiscoveredBackend``).

    ``status`` holds the CRD vocabulary (``ready``, ``unavailable``, ...; see
    :attr:`BackendHealth.crd_status`).  The CRD declares no enum for it, so any string is
    accepted here too: a newer upstream value read back from the API must not break us.
    """

    name: str
    url: str = ""
    status: str = ""
    auth_config_ref: str = ""
    auth_type: str = ""
    last_health_check: datetime | None = attrs.field(default=None, converter=_to_last_health_check)
    message: str = ""
    circuit_breaker_state: CircuitState | None = attrs.field(default=None, converter=_to_circuit_state)
    circuit_last_changed: datetime | None = attrs.field(default=None, converter=_to_circuit_last_changed)
    consecutive_failures: int = 0
    mcp_revision: str = ""

    def __attrs_post_init__(self) -> None:
        check_str("discoveredBackend.name", self.name)
        if not self.name:
            raise ValidationError("discoveredBackend.name", "must not be empty", self.name)
        field = f"discoveredBackends[{self.name}]"
        for attr, key in (
            ("url", "url"),
            ("status", "status"),
            ("auth_config_ref", "authConfigRef"),
            ("auth_type", "authType"),
            ("mcp_revision", "mcpRevision"),
        ):
            check_str(f"{field}.{key}", getattr(self, attr))
        check_str(f"{field}.message", self.message, max_length=MESSAGE_MAX_LENGTH)
        check_int(f"{field}.consecutiveFailures", self.consecutive_failures, maximum=INT64_MAX)


@attrs.frozen
class Status:
    """The complete runtime status of one vMCP (toolhive ``vmcp.Status``).

    ``timestamp`` says when the status was built; it is informational, is not stored in
    the CRD, and is ignored when deciding whether two statuses differ (see
    :meth:`same_content`).
    """

    phase: Phase = attrs.field(converter=_to_phase)
    message: str = ""
    conditions: tuple[Condition, ...] = attrs.field(default=(), converter=_to_conditions)
    discovered_backends: tuple[DiscoveredBackend, ...] = attrs.field(default=(), converter=_to_backends)
    backend_count: int = 0
    observed_generation: int = 0
    timestamp: datetime | None = attrs.field(default=None, converter=_to_timestamp)

    def __attrs_post_init__(self) -> None:
        check_str("message", self.message, max_length=MESSAGE_MAX_LENGTH)
        check_int("backendCount", self.backend_count, maximum=INT32_MAX)
        check_int("observedGeneration", self.observed_generation, maximum=INT64_MAX)
        seen_types: set[str] = set()
        for index, condition in enumerate(self.conditions):
            if not isinstance(condition, Condition):
                raise ValidationError(f"conditions[{index}]", "must be a Condition", condition)
            if condition.type in seen_types:
                raise ValidationError(
                    f"conditions[{index}].type",
                    f"duplicate condition type {condition.type!r} (the CRD keys conditions by type)",
                    condition.type,
                )
            seen_types.add(condition.type)
        seen_names: set[str] = set()
        for index, backend in enumerate(self.discovered_backends):
            if not isinstance(backend, DiscoveredBackend):
                raise ValidationError(f"discoveredBackends[{index}]", "must be a DiscoveredBackend", backend)
            if backend.name in seen_names:
                raise ValidationError(
                    f"discoveredBackends[{index}].name",
                    f"duplicate backend name {backend.name!r} (the CRD keys discoveredBackends by name)",
                    backend.name,
                )
            seen_names.add(backend.name)

    def condition(self, condition_type: str) -> Condition | None:
        """The condition of the given type, if present."""
        for condition in self.conditions:
            if condition.type == condition_type:
                return condition
        return None

    def backend(self, name: str) -> DiscoveredBackend | None:
        """The discovered backend with the given name, if present."""
        for backend in self.discovered_backends:
            if backend.name == name:
                return backend
        return None

    def same_content(self, other: Status | None) -> bool:
        """Whether ``other`` says the same thing, ignoring when it was built."""
        if other is None:
            return False
        if self is other:
            return True
        return attrs.evolve(self, timestamp=None) == attrs.evolve(other, timestamp=None)
