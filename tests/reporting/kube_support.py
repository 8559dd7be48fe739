"""Helpers shared by the reporter's Kubernetes tests: statuses, what the object holds, who owns what.

A plain module (tests import helpers, never a conftest); fixtures that several test modules
use are defined here and imported by name into those modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.manifests import iter_manifests
from testkit.plane_process import poll_until
from testkit.project import DEPLOY_DIR, get_vmcp
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.model.conditions import CONDITION_BACKENDS_DISCOVERED, CONDITION_DEGRADED, CONDITION_READY
from vmcp_actors.model.status import Condition, ConditionStatus, DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.mapping import (
    GROUP,
    PLURAL,
    RUNTIME_CONDITION_TYPES,
    VERSION,
    StatusLayout,
    owned_status,
    stored_section,
)
from vmcp_actors.reporting.protocol import Reporter

RUNTIME_SA = "vmcp-actors"
FIELD_MANAGER = "vmcp-actors"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: Retries fast enough that a test waits for the cause to be fixed, not for the backoff.
FAST_RETRY = Backoff(initial=0.05, maximum=0.25, factor=2.0, jitter=0.2)
#: The fields the runtime owns at the top level in the legacy layout.
LEGACY_FIELDS = ("phase", "message", "backendCount", "discoveredBackends", "observedGeneration", "conditions")

_T = TypeVar("_T")


def wait_for(check: Callable[[], _T | None], what: str, timeout: float = 15.0) -> _T:
    """Poll ``check`` (normally an API read) until it returns something; fail after ``timeout``."""
    return poll_until(check, timeout=timeout, what=what)


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def put_status(
    api: client.ApiClient, obj: dict[str, Any], status: dict[str, Any], manager: str | None = None
) -> dict[str, Any]:
    """A whole-status PUT carrying ``obj``'s resourceVersion (what toolhive's operator does)."""
    metadata = obj["metadata"]
    return cast(
        dict[str, Any],
        custom(api).replace_namespaced_custom_object_status(
            GROUP,
            VERSION,
            metadata["namespace"],
            PLURAL,
            metadata["name"],
            {**obj, "status": status},
            field_manager=manager,
        ),
    )


def condition(
    condition_type: str, status: ConditionStatus, reason: str, message: str = "", at: datetime = T0
) -> Condition:
    return Condition(condition_type, status, reason, message, last_transition_time=at)


def runtime_status(
    index: int,
    *,
    ready: ConditionStatus = ConditionStatus.TRUE,
    ready_at: datetime = T0,
    degraded: bool = False,
    backends: int = 2,
    phase: Phase = Phase.READY,
) -> Status:
    """A status as the health monitor builds it; ``index`` makes its content distinct."""
    conditions = [
        condition(CONDITION_READY, ready, "AllBackendsRoutable", f"status #{index}", ready_at),
        condition(CONDITION_BACKENDS_DISCOVERED, ConditionStatus.TRUE, "BackendsDiscovered", f"{backends} backends"),
    ]
    if degraded:
        conditions.append(condition(CONDITION_DEGRADED, ConditionStatus.TRUE, "BackendsDegraded", "one is slow"))
    return Status(
        phase=phase,
        message=f"status #{index}",
        conditions=tuple(conditions),
        discovered_backends=tuple(
            DiscoveredBackend(f"backend-{b}", url=f"http://backend-{b}:8080/mcp", status="ready")
            for b in range(backends)
        ),
        backend_count=backends,
        timestamp=T0 + timedelta(seconds=index),
    )


def owned_now(obj: dict[str, Any], layout: StatusLayout = StatusLayout.RUNTIME) -> dict[str, Any]:
    """What the object holds in the fields the runtime owns."""
    section = dict(stored_section(obj, layout))
    if layout is StatusLayout.RUNTIME:
        return section
    owned = {key: section[key] for key in LEGACY_FIELDS if key in section}
    conditions = [c for c in section.get("conditions") or [] if c["type"] in RUNTIME_CONDITION_TYPES]
    if conditions:
        owned["conditions"] = conditions
    else:
        owned.pop("conditions", None)
    return owned


def says(obj: dict[str, Any], status: Status, layout: StatusLayout = StatusLayout.RUNTIME) -> bool:
    """Whether the runtime's fields of ``obj`` say exactly ``status`` (transition times as stored)."""
    expected = owned_status(status, layout, obj, T0)
    held = owned_now(obj, layout)
    if layout is StatusLayout.LEGACY and "observedGeneration" in held and "observedGeneration" not in expected:
        held.pop("observedGeneration")  # someone else's
    return held == expected


def shows(
    api: client.ApiClient, namespace: str, status: Status, layout: StatusLayout = StatusLayout.RUNTIME
) -> dict[str, Any] | None:
    """The object, once its runtime-owned fields say exactly ``status``."""
    obj = get_vmcp(api, namespace)
    return obj if says(obj, status, layout) else None


def status_fields_owned_by(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    """The ``f:status`` part of ``managedFields`` for ``manager`` (empty if it owns none)."""
    owned: dict[str, Any] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        if entry.get("manager") == manager:
            owned.update(entry.get("fieldsV1", {}).get("f:status", {}))
    return owned


def apiserver_requests(api: client.ApiClient, verb: str, subresource: str = "status") -> int:
    """``apiserver_request_total`` for VirtualMCPServers with ``verb`` on ``subresource``, summed over codes."""
    text = raw_request(api, "GET", "/metrics", headers={"Accept": "text/plain"}).data.decode()
    total = 0
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if (labels.get("resource"), labels.get("subresource"), labels.get("verb")) == (PLURAL, subresource, verb):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@pytest.fixture
def runtime_rbac(control_plane: ControlPlane, namespace: str) -> None:
    """deploy/rbac in the test's namespace: the runtime's ServiceAccount, Role and RoleBinding."""
    for manifest in iter_manifests(DEPLOY_DIR / "rbac"):
        control_plane.apply_manifest(manifest, namespace=namespace)


@pytest.fixture
def actor_reporters() -> Iterator[Callable[..., ActorReporter]]:
    """Start ``ActorReporter``\\ s around sinks and always shut them down."""
    started: list[Callable[[float | None], None]] = []

    def make(sink: Reporter, **options: Any) -> ActorReporter:
        reporter = ActorReporter(sink, **{"backoff": FAST_RETRY, "flush_timeout": 10.0, **options})
        started.append(reporter.start())
        return reporter

    yield make
    for shutdown in started:
        shutdown(10.0)
