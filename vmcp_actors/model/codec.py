"""The status's JSON codec: the camelCase shape of toolhive's Go types, omit-empty and all.

Whatever this writes -- to the CRD's status subresource, a status file, a log line --
reads back to an equal :class:`~vmcp_actors.model.status.Status`
(``decode_status(encode_status(s)) == s``), and decoding a foreign document validates
it with the same limits as construction, naming the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vmcp_actors.errors import ValidationError
from vmcp_actors.model.status import (
    INT32_MAX,
    INT64_MAX,
    Condition,
    DiscoveredBackend,
    Phase,
    Status,
    check_int,
    check_str,
    format_time,
    parse_time,
)

__all__ = [
    "decode_backend",
    "decode_condition",
    "decode_status",
    "encode_backend",
    "encode_condition",
    "encode_status",
]


def _put(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key`` unless the Go type would drop it (``omitempty``: "", 0, empty list, nil)."""
    if value is None or value == "" or value == 0 or value == [] or value is False:
        return
    out[key] = value


def encode_condition(condition: Condition) -> dict[str, Any]:
    """Marshal a condition as ``metav1.Condition`` does (reason and message always present)."""
    out: dict[str, Any] = {"type": condition.type, "status": condition.status.value}
    _put(out, "observedGeneration", condition.observed_generation)
    out["lastTransitionTime"] = format_time(condition.last_transition_time)
    out["reason"] = condition.reason
    out["message"] = condition.message
    return out


def encode_backend(backend: DiscoveredBackend) -> dict[str, Any]:
    """Marshal a discovered backend as toolhive's ``DiscoveredBackend`` (omit-empty)."""
    out: dict[str, Any] = {"name": backend.name}
    _put(out, "url", backend.url)
    _put(out, "status", backend.status)
    _put(out, "authConfigRef", backend.auth_config_ref)
    _put(out, "authType", backend.auth_type)
    if backend.last_health_check is not None:
        out["lastHealthCheck"] = format_time(backend.last_health_check)
    _put(out, "message", backend.message)
    if backend.circuit_breaker_state is not None:
        out["circuitBreakerState"] = backend.circuit_breaker_state.value
    if backend.circuit_last_changed is not None:
        out["circuitLastChanged"] = format_time(backend.circuit_last_changed)
    _put(out, "consecutiveFailures", backend.consecutive_failures)
    _put(out, "mcpRevision", backend.mcp_revision)
    return out


def encode_status(status: Status, *, include_timestamp: bool = True) -> dict[str, Any]:
    """Marshal a status to the camelCase JSON shape of the Go types.

    ``include_timestamp=False`` gives exactly the fields the CRD's status stores.
    """
    out: dict[str, Any] = {"phase": status.phase.value}
    _put(out, "message", status.message)
    _put(out, "conditions", [encode_condition(c) for c in status.conditions])
    _put(out, "discoveredBackends", [encode_backend(b) for b in status.discovered_backends])
    _put(out, "backendCount", status.backend_count)
    _put(out, "observedGeneration", status.observed_generation)
    if include_timestamp and status.timestamp is not None:
        out["timestamp"] = format_time(status.timestamp)
    return out


def _require_mapping(field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be an object, got {type(value).__name__}", value)
    return value


def _get_str(data: Mapping[str, Any], key: str, field: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    return check_str(f"{field}.{key}" if field else key, value)


def _get_int(data: Mapping[str, Any], key: str, field: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    return check_int(f"{field}.{key}" if field else key, value, maximum=INT64_MAX)


def _get_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(key, f"must be a list, got {type(value).__name__}", value)
    return value


def decode_condition(data: object, field: str = "condition") -> Condition:
    """Unmarshal one ``metav1.Condition``."""
    mapping = _require_mapping(field, data)
    for key in ("type", "status", "reason", "lastTransitionTime"):
        if mapping.get(key) is None:
            raise ValidationError(f"{field}.{key}", "is required", None)
    return Condition(
        type=check_str(f"{field}.type", mapping["type"]),
        status=mapping["status"],
        reason=check_str(f"{field}.reason", mapping["reason"]),
        message=_get_str(mapping, "message", field),
        last_transition_time=parse_time(
            check_str(f"{field}.lastTransitionTime", mapping["lastTransitionTime"]),
            f"{field}.lastTransitionTime",
        ),
        observed_generation=_get_int(mapping, "observedGeneration", field),
    )


def _get_time(data: Mapping[str, Any], key: str, field: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    path = f"{field}.{key}" if field else key
    return parse_time(check_str(path, value), path)


def decode_backend(data: object, field: str = "discoveredBackend") -> DiscoveredBackend:
    """Unmarshal one discovered backend; zero times may arrive as null or be absent."""
    mapping = _require_mapping(field, data)
    if mapping.get("name") is None:
        raise ValidationError(f"{field}.name", "is required", None)
    state = mapping.get("circuitBreakerState")
    return DiscoveredBackend(
        name=check_str(f"{field}.name", mapping["name"]),
        url=_get_str(mapping, "url", field),
        status=_get_str(mapping, "status", field),
        auth_config_ref=_get_str(mapping, "authConfigRef", field),
        auth_type=_get_str(mapping, "authType", field),
        last_health_check=_get_time(mapping, "lastHealthCheck", field),
        message=_get_str(mapping, "message", field),
        circuit_breaker_state=None if state in (None, "") else state,
        circuit_last_changed=_get_time(mapping, "circuitLastChanged", field),
        consecutive_failures=_get_int(mapping, "consecutiveFailures", field),
        mcp_revision=_get_str(mapping, "mcpRevision", field),
    )


def decode_status(data: object) -> Status:
    """Unmarshal status JSON (the inverse of :func:`encode_status`).

    An unknown phase is an error here: only the Kubernetes conversion maps it to Pending
    (see :meth:`Phase.from_crd`).  A missing phase means the CRD default, Pending.
    """
    mapping = _require_mapping("status", data)
    phase = mapping.get("phase")
    return Status(
        phase=Phase.PENDING if phase is None else phase,
        message=_get_str(mapping, "message", ""),
        conditions=tuple(
            decode_condition(item, f"conditions[{i}]") for i, item in enumerate(_get_list(mapping, "conditions"))
        ),
        discovered_backends=tuple(
            decode_backend(item, f"discoveredBackends[{i}]")
            for i, item in enumerate(_get_list(mapping, "discoveredBackends"))
        ),
        backend_count=check_int("backendCount", mapping.get("backendCount") or 0, maximum=INT32_MAX),
        observed_generation=_get_int(mapping, "observedGeneration", ""),
        timestamp=_get_time(mapping, "timestamp", ""),
    )
