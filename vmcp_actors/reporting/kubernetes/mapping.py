"""The pure mapping from a runtime :class:`~vmcp_actors.model.status.Status` to a ``VirtualMCPServer``'s status.

toolhive's ``k8s_reporter.go`` ``updateStatus``, field by field, as functions of the object
as last read: no client, no clock, no I/O, so the rules a second writer (the operator)
relies on -- what the runtime does not own survives, ``lastTransitionTime`` moves only on
a flip, writing the result again changes nothing -- are checked by hypothesis over any
stored object and any status.  The resource's coordinates live here too, since they name
the object this shape belongs to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from vmcp_actors.errors import ValidationError
from vmcp_actors.model.codec import encode_backend, encode_condition
from vmcp_actors.model.conditions import CONDITION_BACKENDS_DISCOVERED, CONDITION_DEGRADED, CONDITION_READY
from vmcp_actors.model.status import Condition, Phase, Status, format_time, parse_time

__all__ = [
    "CORE_CONDITION_TYPES",
    "GROUP",
    "PLURAL",
    "RUNTIME_CONDITION_TYPES",
    "STATUS_RESOURCE",
    "VERSION",
    "desired_status",
    "missing_core_conditions",
]

GROUP: Final = "toolhive.stacklok.dev"
VERSION: Final = "v1beta1"
PLURAL: Final = "virtualmcpservers"
#: The subresource a status write needs RBAC for.
STATUS_RESOURCE: Final = f"{PLURAL}/status"

#: The condition types the runtime owns (toolhive ``knownConditionTypes``): upserted when
#: present in the new status, removed when absent.  Every other type belongs to someone else.
RUNTIME_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_DEGRADED, CONDITION_BACKENDS_DISCOVERED)
#: Runtime conditions every status built by the health monitor carries; a status without
#: one of them is logged as a probable bug, as toolhive does.
CORE_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_BACKENDS_DISCOVERED)


def desired_status(obj: Mapping[str, Any], status: Status, now: datetime) -> dict[str, Any]:
    """The ``status`` the object should hold after the runtime reports ``status``.

    toolhive's ``updateStatus`` as a pure function of the object as last read:

    * ``phase`` through :meth:`Phase.from_crd` (unknown values become Pending), ``message``
      and ``backendCount`` set, ``discoveredBackends`` replaced wholesale; empty values are
      dropped, as Go's ``omitempty`` drops them;
    * ``observedGeneration`` is the object's ``metadata.generation``, on the status and on
      each condition the runtime writes (the runtime reports against the spec it was read
      with, and its own ``observed_generation`` and ``timestamp`` are ignored);
    * the runtime's condition types (:data:`RUNTIME_CONDITION_TYPES`) absent from
      ``status`` are removed, and every condition in ``status`` is upserted with
      apimachinery's ``meta.SetStatusCondition`` semantics: ``lastTransitionTime`` changes
      only when ``status`` flips, while reason, message and observedGeneration are
      overwritten in place;
    * everything else -- ``url``, the ``*ConfigHash`` fields, other writers' conditions,
      unknown fields -- is returned exactly as it was.

    One deliberate refinement: on a flip, the new ``lastTransitionTime`` is the one the
    runtime recorded, unless that is older than the stored one (the runtime's view lagged
    another writer's flip); then it is ``now``, so the time never moves backwards.

    ``now`` is only used for that case.  The function never mutates ``obj``; applying its
    result and calling it again with the same ``status`` returns the same dict.
    """
    metadata = obj.get("metadata")
    generation = metadata.get("generation") if isinstance(metadata, Mapping) else None
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        generation = 0
    current = obj.get("status")
    out: dict[str, Any] = copy.deepcopy(dict(current)) if isinstance(current, Mapping) else {}
    out["phase"] = Phase.from_crd(status.phase).value
    _set_or_drop(out, "message", status.message)
    _set_or_drop(out, "backendCount", status.backend_count)
    _set_or_drop(out, "discoveredBackends", [encode_backend(backend) for backend in status.discovered_backends])
    _set_or_drop(out, "observedGeneration", generation)
    existing = out.get("conditions")
    merged = _merge_conditions(existing if isinstance(existing, list) else [], status.conditions, generation, now)
    _set_or_drop(out, "conditions", merged)
    return out


def missing_core_conditions(status: Status) -> list[str]:
    """The core condition types (Ready, BackendsDiscovered) ``status`` lacks."""
    present = {condition.type for condition in status.conditions}
    return [condition_type for condition_type in CORE_CONDITION_TYPES if condition_type not in present]


def _set_or_drop(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key``, or remove it when Go's ``omitempty`` would not marshal ``value``."""
    if value is None or value == "" or value == 0 or value == []:
        out.pop(key, None)
    else:
        out[key] = value


def _merge_conditions(existing: Sequence[Any], new: Sequence[Condition], generation: int, now: datetime) -> list[Any]:
    """``existing`` with the runtime's absent types dropped and ``new`` upserted (``SetStatusCondition``)."""
    wanted = {condition.type for condition in new}
    result: list[Any] = [
        item
        for item in existing
        if not (
            isinstance(item, Mapping) and item.get("type") in RUNTIME_CONDITION_TYPES and item["type"] not in wanted
        )
    ]
    for condition in new:
        encoded = encode_condition(attrs.evolve(condition, observed_generation=generation))
        index = next(
            (i for i, item in enumerate(result) if isinstance(item, Mapping) and item.get("type") == condition.type),
            None,
        )
        if index is None:
            result.append(encoded)
            continue
        updated = dict(result[index])
        if updated.get("status") != encoded["status"]:
            updated["status"] = encoded["status"]
            updated["lastTransitionTime"] = _transition_time(
                condition.last_transition_time, updated.get("lastTransitionTime"), now
            )
        updated["reason"] = encoded["reason"]
        updated["message"] = encoded["message"]
        _set_or_drop(updated, "observedGeneration", generation)
        result[index] = updated
    return result


def _transition_time(reported: datetime, stored: object, now: datetime) -> str:
    """The runtime's transition time, unless it predates the stored one (then ``now``)."""
    if isinstance(stored, str):
        try:
            previous = parse_time(stored, "lastTransitionTime")
        except ValidationError:
            return format_time(reported)
        if reported < previous:
            return format_time(max(now, previous))
    return format_time(reported)
