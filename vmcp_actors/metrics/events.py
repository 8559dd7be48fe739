"""Events the runtime hands the metrics observer that have no home in a lower layer.

Probe outcomes are published by the health actor (:class:`~vmcp_actors.health.messages.ProbeObserved`),
lifecycle changes by the backend actors (:class:`~vmcp_actors.backend.messages.BackendEvent`),
and reporter outcomes by the reporter (:class:`~vmcp_actors.reporting.sink_actor.ReporterEvent`).
What the supervisor does sits above those layers, so its event is defined here, where
both the supervisor and the observer can import it.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["ACTOR_CRASH", "BackendRestarted"]

#: ``vmcp_backend_restarts_total{reason}`` when the supervisor rebuilt a crashed backend actor.
ACTOR_CRASH: Final = "actor_crash"


@attrs.frozen
class BackendRestarted:
    """The supervisor rebuilt the backend's actor after it crashed."""

    name: str
    reason: str = ACTOR_CRASH
