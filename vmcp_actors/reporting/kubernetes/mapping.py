"""The pure mapping from a runtime :class:`~vmcp_actors.model.status.Status` to a ``VirtualMCPServer``'s status.

Two layouts, because toolhive moved the runtime's status in v0.47:

* :attr:`StatusLayout.RUNTIME` (toolhive v0.47 and later, v0.63.0 included): the runtime owns
  ``status.runtime`` -- phase, message, conditions, discoveredBackends, backendCount -- and
  writes nothing else; the operator projects it into the top-level fields.
* :attr:`StatusLayout.LEGACY` (before v0.47): the runtime writes the top-level phase,
  message, backendCount, discoveredBackends, its three condition types and, when it knows
  it, observedGeneration, beside the operator's fields.

:func:`owned_status` computes exactly the fields the runtime owns in either layout (what a
server-side apply sends; nothing another manager owns is ever in it), and
:func:`apply_patch` wraps them in the apply body.  :func:`desired_status` is the whole
status the update (GET+PUT) fallback writes.  No client, no clock, no I/O: the rules a
second writer relies on -- what the runtime does not own survives, ``lastTransitionTime``
moves only on a flip, computing again from the result changes nothing -- are checked by
hypothesis over any stored object and any status.
"""

from __future__ import annotations

import copy
import enum
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
    "KIND",
    "PLURAL",
    "RUNTIME_CONDITION_TYPES",
    "RUNTIME_KEY",
    "STATUS_RESOURCE",
    "VERSION",
    "StatusLayout",
    "apply_patch",
    "desired_status",
    "has_runtime_section",
    "missing_core_conditions",
    "owned_status",
    "stored_section",
]

GROUP: Final = "toolhive.stacklok.dev"
VERSION: Final = "v1beta1"
KIND: Final = "VirtualMCPServer"
PLURAL: Final = "virtualmcpservers"
#: The subresource a status write needs RBAC for.
STATUS_RESOURCE: Final = f"{PLURAL}/status"
#: The key of the runtime-owned subtree under ``status`` (toolhive v0.47+).
RUNTIME_KEY: Final = "runtime"

#: The condition types the runtime owns (toolhive ``knownConditionTypes``): upserted when
#: present in the new status, removed when absent.  Every other type belongs to someone else.
RUNTIME_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_DEGRADED, CONDITION_BACKENDS_DISCOVERED)
#: Runtime conditions every status built by the health monitor carries; a status without
#: one of them is logged as a probable bug, as toolhive does.
CORE_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_BACKENDS_DISCOVERED)


class StatusLayout(enum.StrEnum):
    """Where in ``status`` the runtime's fields live (see the module docstring)."""

    RUNTIME = "runtime"
    LEGACY = "legacy"


def stored_section(obj: Mapping[str, Any] | None, layout: StatusLayout) -> Mapping[str, Any]:
    """The part of ``obj``'s status the runtime's fields live in (empty when there is none)."""
    status = obj.get("status") if isinstance(obj, Mapping) else None
    if not isinstance(status, Mapping):
        return {}
    if layout is StatusLayout.LEGACY:
        return status
    runtime = status.get(RUNTIME_KEY)
    return runtime if isinstance(runtime, Mapping) else {}


def has_runtime_section(obj: Mapping[str, Any] | None) -> bool:
    """Whether ``obj`` as the API server returned it carries ``status.runtime``.

    A CRD without the field prunes it, so an object that has it proves the CRD has it.
    """
    status = obj.get("status") if isinstance(obj, Mapping) else None
    return isinstance(status, Mapping) and isinstance(status.get(RUNTIME_KEY), Mapping)


def owned_status(
    status: Status,
    layout: StatusLayout,
    stored: Mapping[str, Any] | None,
    now: datetime,
    observed_generation: int | None = None,
) -> dict[str, Any]:
    """Exactly the fields the runtime owns, as they should be stored after reporting ``status``.

    * ``phase`` through :meth:`Phase.from_crd` (unknown values become Pending), ``message``,
      ``backendCount`` and ``discoveredBackends``; empty values are left out, as Go's
      ``omitempty`` leaves them out (with server-side apply, leaving out a field this
      manager owned removes it);
    * the conditions in ``status`` -- a runtime condition type absent from it is simply not
      there, so an apply removes it;
    * ``observedGeneration`` only when the runtime knows which generation its config came
      from (``observed_generation``): on each condition, and at the top level in the legacy
      layout (``status.runtime`` has no such field).  Otherwise it is left to the operator;
    * each condition's ``lastTransitionTime`` is the stored one (``stored``: the object as
      last read or applied) while its status has not flipped, else the time the runtime
      recorded -- unless that is older than the stored one (the runtime's view lagged), then
      ``now``, so the time never moves backwards.

    The function never mutates ``stored``; computing it again from an object that holds
    its result returns the same dict.
    """
    section = stored_section(stored, layout)
    out: dict[str, Any] = {"phase": Phase.from_crd(status.phase).value}
    _put(out, "message", status.message)
    _put(out, "backendCount", status.backend_count)
    _put(out, "discoveredBackends", [encode_backend(backend) for backend in status.discovered_backends])
    generation = _generation(observed_generation)
    if layout is StatusLayout.LEGACY:
        _put(out, "observedGeneration", generation)
    existing = section.get("conditions")
    previous = _by_type(existing if isinstance(existing, list) else [])
    _put(out, "conditions", [_owned_condition(c, previous.get(c.type), generation, now) for c in status.conditions])
    return out


def apply_patch(name: str, namespace: str, layout: StatusLayout, owned: Mapping[str, Any]) -> dict[str, Any]:
    """The server-side apply body for ``/status``: the object's identity and the owned fields, nothing else."""
    section = dict(owned)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "status": section if layout is StatusLayout.LEGACY else {RUNTIME_KEY: section},
    }


def desired_status(
    obj: Mapping[str, Any],
    status: Status,
    now: datetime,
    *,
    layout: StatusLayout = StatusLayout.LEGACY,
    observed_generation: int | None = None,
) -> dict[str, Any]:
    """The whole ``status`` the update (GET+PUT) fallback writes after the runtime reports ``status``.

    toolhive's ``updateStatus`` as a pure function of the object as last read.  In the
    runtime layout ``status.runtime`` is replaced by :func:`owned_status` and nothing else
    changes.  In the legacy layout the owned fields are set (or removed when empty), the
    runtime's condition types absent from ``status`` are removed, its conditions are
    upserted in place (``meta.SetStatusCondition``; an ``observedGeneration`` the runtime
    does not know is not claimed) and ``observedGeneration`` is set only when known.
    Everything else -- ``url``, the ``*ConfigHash`` fields, other writers' conditions,
    unknown fields -- is returned exactly as it was.  ``obj`` is never mutated.
    """
    current = obj.get("status")
    out: dict[str, Any] = copy.deepcopy(dict(current)) if isinstance(current, Mapping) else {}
    owned = owned_status(status, layout, obj, now, observed_generation)
    if layout is StatusLayout.RUNTIME:
        out[RUNTIME_KEY] = owned
        return out
    for key in ("phase", "message", "backendCount", "discoveredBackends"):
        _put_or_drop(out, key, owned.get(key))
    if "observedGeneration" in owned:
        out["observedGeneration"] = owned["observedGeneration"]
    existing = out.get("conditions")
    merged = _merge_conditions(existing if isinstance(existing, list) else [], owned.get("conditions", []))
    _put_or_drop(out, "conditions", merged)
    return out


def missing_core_conditions(status: Status) -> list[str]:
    """The core condition types (Ready, BackendsDiscovered) ``status`` lacks."""
    present = {condition.type for condition in status.conditions}
    return [condition_type for condition_type in CORE_CONDITION_TYPES if condition_type not in present]


def _generation(value: int | None) -> int:
    """A known generation, or 0 (which ``omitempty`` drops) when unknown or invalid."""
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def _empty(value: object) -> bool:
    return value is None or value == "" or value == 0 or value == []


def _put(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key`` unless Go's ``omitempty`` would not marshal ``value``."""
    if not _empty(value):
        out[key] = value


def _put_or_drop(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key``, or remove it when Go's ``omitempty`` would not marshal ``value``."""
    if _empty(value):
        out.pop(key, None)
    else:
        out[key] = value


def _by_type(items: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
    return {str(item["type"]): item for item in items if isinstance(item, Mapping) and "type" in item}


def _owned_condition(
    condition: Condition, previous: Mapping[str, Any] | None, generation: int, now: datetime
) -> dict[str, Any]:
    """One condition as the runtime stores it, its transition time settled against ``previous``."""
    encoded = encode_condition(attrs.evolve(condition, observed_generation=generation))
    if previous is not None:
        stored_at = previous.get("lastTransitionTime")
        if previous.get("status") == encoded["status"]:
            if isinstance(stored_at, str) and _parses(stored_at):
                encoded["lastTransitionTime"] = stored_at
        else:
            encoded["lastTransitionTime"] = _transition_time(condition.last_transition_time, stored_at, now)
    return encoded


def _merge_conditions(existing: Sequence[Any], owned: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``existing`` with the runtime's types replaced by ``owned`` (in place) or removed when absent."""
    wanted = {str(item["type"]): item for item in owned}
    result: list[Any] = []
    for item in existing:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind in wanted:
            result.append(dict(wanted.pop(kind)))
        elif kind not in RUNTIME_CONDITION_TYPES:
            result.append(item)
    result.extend(dict(item) for item in wanted.values())
    return result


def _parses(value: str) -> bool:
    try:
        parse_time(value, "lastTransitionTime")
    except ValidationError:
        return False
    return True


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
