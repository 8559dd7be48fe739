"""Which Events a new status means, as a pure fold over the statuses the runtime builds.

``notices(memory, status)`` compares ``status`` with what the previous statuses said and
returns what an operator should hear about, each as a :class:`Notice` (a reason, a note,
and the key that groups repeats into one Event series):

* ``PhaseChanged`` when the phase differs from the previous status' phase (keyed by the
  pair of phases, so a flapping Ready/Degraded is two Events with growing counts);
* ``BackendUnavailable`` / ``BackendUnauthenticated`` when a backend's reported status
  becomes ``unavailable`` / ``unauthenticated``, and ``BackendRecovered`` when it is
  ``ready`` again after one of those (keyed by the backend's name).

The memory keeps, per backend, the last of those three things *announced*, not merely
the previous status: a backend that goes ``unavailable`` -> ``unknown`` (reconnecting)
-> ``ready`` still recovers, and ``degraded`` or ``unknown`` alone never make news.  A
backend seen for the first time already down is announced; one first seen ready is not.
A backend that leaves the status is forgotten.  The first status ever seen announces
no phase change (there is nothing to change from).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs

from vmcp_actors.leadership.event_series import Reason
from vmcp_actors.model.status import BackendHealth, DiscoveredBackend, Phase, Status

__all__ = ["Announced", "Notice", "StatusMemory", "notices"]

_UNAVAILABLE: Final = BackendHealth.UNHEALTHY.crd_status
_UNAUTHENTICATED: Final = BackendHealth.UNAUTHENTICATED.crd_status
_READY: Final = BackendHealth.HEALTHY.crd_status
#: How much of a backend's own message a note quotes (the Event note holds 1 kB).
_DETAIL_CHARS: Final = 400


class Announced(enum.StrEnum):
    """The last thing said about a backend."""

    UP = "up"
    UNAVAILABLE = "unavailable"
    UNAUTHENTICATED = "unauthenticated"


@attrs.frozen
class Notice:
    """One thing to report: ``note_key`` groups repeats of ``reason`` into one series."""

    reason: Reason
    note: str
    note_key: str


@attrs.frozen
class StatusMemory:
    """The previous phase and, per backend, the last announcement."""

    phase: Phase | None = None
    backends: Mapping[str, Announced] = attrs.field(factory=dict)


def notices(memory: StatusMemory, status: Status) -> tuple[StatusMemory, tuple[Notice, ...]]:
    """The memory after ``status``, and what changed, phase first, backends in status order."""
    out: list[Notice] = []
    if memory.phase is not None and memory.phase is not status.phase:
        out.append(
            Notice(
                Reason.PHASE_CHANGED,
                _with_detail(f"phase {memory.phase.value} -> {status.phase.value}", status.message),
                f"{memory.phase.value}->{status.phase.value}",
            )
        )
    backends: dict[str, Announced] = {}
    for backend in status.discovered_backends:
        before = memory.backends.get(backend.name)
        after, notice = _backend(before, backend)
        if after is not None:
            backends[backend.name] = after
        if notice is not None:
            out.append(notice)
    return StatusMemory(status.phase, backends), tuple(out)


def _backend(before: Announced | None, backend: DiscoveredBackend) -> tuple[Announced | None, Notice | None]:
    name = backend.name
    if backend.status == _UNAVAILABLE and before is not Announced.UNAVAILABLE:
        note = _with_detail(f"backend {name} is unavailable", backend.message)
        return Announced.UNAVAILABLE, Notice(Reason.BACKEND_UNAVAILABLE, note, name)
    if backend.status == _UNAUTHENTICATED and before is not Announced.UNAUTHENTICATED:
        note = _with_detail(f"backend {name} refuses the runtime's credentials", backend.message)
        return Announced.UNAUTHENTICATED, Notice(Reason.BACKEND_UNAUTHENTICATED, note, name)
    if backend.status == _READY:
        if before in (Announced.UNAVAILABLE, Announced.UNAUTHENTICATED):
            return Announced.UP, Notice(Reason.BACKEND_RECOVERED, f"backend {name} is ready again", name)
        return Announced.UP, None
    return before, None


def _with_detail(summary: str, detail: str) -> str:
    detail = detail.strip()
    if not detail:
        return summary
    if len(detail) > _DETAIL_CHARS:
        detail = detail[: _DETAIL_CHARS - 3] + "..."
    return f"{summary}: {detail}"
