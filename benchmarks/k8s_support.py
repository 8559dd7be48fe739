"""What the Kubernetes benchmarks share: a running control plane, the object, and statuses to write.

Every Kubernetes benchmark starts its own control plane (``testkit/control_plane.py``,
binaries from ``scripts/envtest.py ensure``) with toolhive's v0.63.0 CRD installed
(``deploy/standalone/``), so the runtime writes ``status.runtime``, and works in one
namespace.  Visibility is always judged the way a reader would: a GET from another
client, polled until the stored status says what was written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from kubernetes import client

from testkit.cli_tools import TOOLHIVE_CRD_V0_63_0
from testkit.control_plane import ControlPlane
from testkit.crds import install_crd
from testkit.project import create_vmcp as project_create_vmcp
from testkit.project import load_envtest
from vmcp_actors.model.status import Condition, ConditionStatus, DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION

__all__ = [
    "NAMESPACE",
    "create_vmcp",
    "get_vmcp",
    "make_statuses",
    "running_control_plane",
    "runtime_status",
    "wait_stored",
    "wait_visible",
]

NAMESPACE = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_statuses(distinct: int, tag: str) -> list[Status]:
    """Statuses as the health monitor builds them: conditions, five backends, distinct content."""
    phases = [Phase.READY, Phase.DEGRADED, Phase.READY, Phase.FAILED]
    statuses = []
    for i in range(distinct):
        routable = i % 6
        ready = ConditionStatus.TRUE if routable else ConditionStatus.FALSE
        statuses.append(
            Status(
                phase=phases[i % len(phases)],
                message=f"{tag}: status {i}, {routable}/5 backends routable",
                conditions=(
                    Condition("Ready", ready, "AllBackendsRoutable", f"{routable}/5", last_transition_time=T0),
                    Condition(
                        "BackendsDiscovered",
                        ConditionStatus.TRUE,
                        "BackendsDiscovered",
                        "5 backends",
                        last_transition_time=T0,
                    ),
                ),
                discovered_backends=tuple(
                    DiscoveredBackend(
                        f"backend-{b}",
                        url=f"http://backend-{b}.{NAMESPACE}.svc:8080/mcp",
                        status="ready" if b < routable else "unavailable",
                        consecutive_failures=(i + b) % 3,
                    )
                    for b in range(5)
                ),
                backend_count=routable,
                timestamp=T0 + timedelta(seconds=i),
            )
        )
    return statuses


def create_vmcp(api: client.ApiClient, name: str) -> None:
    """A fresh VirtualMCPServer ``name`` in the benchmark's namespace."""
    project_create_vmcp(api, NAMESPACE, name)


def get_vmcp(api: client.ApiClient, name: str) -> dict[str, Any]:
    """The stored VirtualMCPServer ``name``."""
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    return cast(dict[str, Any], obj)


def runtime_status(obj: dict[str, Any]) -> dict[str, Any]:
    """The runtime's part of the stored status: ``status.runtime``, or the top level (legacy CRD)."""
    status: dict[str, Any] = obj.get("status") or {}
    runtime: dict[str, Any] = status.get("runtime") or status
    return runtime


def wait_stored(
    api: client.ApiClient,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float,
    *,
    interval: float = 0.0,
) -> tuple[float, int]:
    """GET until ``predicate(runtime status)``; return when (perf_counter) that GET returned, and how many GETs.

    ``interval`` 0 polls in a tight loop (a burst's end, measured to the millisecond);
    a few milliseconds keep a poll that lasts seconds from loading the API server.
    """
    deadline = time.perf_counter() + timeout
    polls = 0
    while True:
        obj = get_vmcp(api, name)
        seen = time.perf_counter()
        polls += 1
        if predicate(runtime_status(obj)):
            return seen, polls
        if seen > deadline:
            raise TimeoutError(f"{name}: the stored status never matched within {timeout} s: {runtime_status(obj)}")
        if interval:
            time.sleep(interval)  # pacing the poll, not synchronisation: the GET decides


def wait_visible(api: client.ApiClient, name: str, message: str, timeout: float = 30.0) -> tuple[float, int]:
    """GET in a tight loop until the stored message is ``message``; return when that GET returned."""
    return wait_stored(api, name, lambda status: status.get("message") == message, timeout)


@contextlib.contextmanager
def running_control_plane() -> Iterator[ControlPlane]:
    """A real kube-apiserver + etcd with the CRD installed and the namespace created."""
    binaries = load_envtest().ensure()
    plane = ControlPlane(binaries)
    started = time.monotonic()
    plane.start()
    try:
        install_crd(plane, TOOLHIVE_CRD_V0_63_0)
        plane.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        print(f"control plane ready in {time.monotonic() - started:.1f} s at {plane.url}")
        yield plane
    finally:
        plane.stop()
