"""The condition types and reasons the runtime writes: one vocabulary for who builds a status and who stores it.

Operators alert on the ``Ready`` condition and its reason, so these are toolhive's
exact strings (``pkg/vmcp/health/monitor.go``).  They live in the model because both
the status builder (health) and the Kubernetes reporter (reporting) need them, and
neither stage may import the other.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONDITION_BACKENDS_DISCOVERED",
    "CONDITION_DEGRADED",
    "CONDITION_READY",
    "REASON_ALL_BACKENDS_ROUTABLE",
    "REASON_BACKENDS_DEGRADED",
    "REASON_BACKENDS_DISCOVERED",
    "REASON_BACKENDS_PENDING",
    "REASON_NO_ROUTABLE_BACKENDS",
    "REASON_SOME_BACKENDS_UNHEALTHY",
]

CONDITION_READY: Final = "Ready"
CONDITION_BACKENDS_DISCOVERED: Final = "BackendsDiscovered"
CONDITION_DEGRADED: Final = "Degraded"

REASON_ALL_BACKENDS_ROUTABLE: Final = "AllBackendsRoutable"
REASON_SOME_BACKENDS_UNHEALTHY: Final = "SomeBackendsUnhealthy"
REASON_NO_ROUTABLE_BACKENDS: Final = "NoRoutableBackends"
REASON_BACKENDS_PENDING: Final = "BackendsPending"
REASON_BACKENDS_DISCOVERED: Final = "BackendsDiscovered"
REASON_BACKENDS_DEGRADED: Final = "BackendsDegraded"
