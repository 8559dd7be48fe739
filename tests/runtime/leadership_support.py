"""Replicas of one VirtualMCPServer for the leadership tests (not a test module).

Each :class:`Replica` is a whole runtime: real MCP backends, its own elector, its own
``K8sReporter`` gated by that elector, acting as a ServiceAccount (the runtime's by
default, or one per replica so the API server's audit log tells them apart).  Their
views differ on purpose (each serves a backend named after it), so the object says
whose status it holds: :func:`in_api` reads ``(phase, [backend names])`` back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.project import get_vmcp
from testkit.waits import bound
from tests.leadership.kube_support import FAST, RUNTIME_SA, Member
from tests.servers.fixtures import RunningServer
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.leadership.service import Leadership
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.model.status import Phase
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

__all__ = [
    "HEALTH",
    "Replica",
    "Replicas",
    "View",
    "in_api",
    "own_view",
    "ready",
    "view_of",
    "wait_api",
    "wait_until",
]

HEALTH = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)
RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1))

#: What the object (or a runtime) says: the phase and the names of the backends it discovered.
View = tuple[str, list[str]]


@dataclass
class Replica:
    name: str
    runtime: Runtime
    member: Member
    reporter: K8sReporter
    backend: RunningServer

    def view(self) -> View:
        status = self.runtime.status()
        assert status is not None
        return status.phase.value, [b.name for b in status.discovered_backends]


class Replicas:
    """Replicas of VirtualMCPServer ``namespace/vmcp``; every one started is stopped by :meth:`stop_all`."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.started: list[Replica] = []

    def start(
        self,
        name: str,
        backend: RunningServer,
        *,
        events: bool = False,
        timing: LeaderElection = FAST,
        health: FailureHandling = HEALTH,
        sa: str = RUNTIME_SA,
    ) -> Replica:
        """Replica ``name`` (identity ``name``, backend ``name`` without ``pod-``) as ServiceAccount ``sa``."""
        settings = LeaderElection(
            identity=name,
            lease_duration=timing.lease_duration,
            renew_deadline=timing.renew_deadline,
            retry_period=timing.retry_period,
            request_timeout=timing.request_timeout,
            events=events,
        )
        leadership = Leadership(settings, "vmcp", self.namespace, self._client(sa))
        member = Member(leadership)
        reporter = K8sReporter("vmcp", self.namespace, api_client=self._client(sa), **leadership.reporter_options())
        spec = BackendSpec(name=name.removeprefix("pod-"), type="streamable-http", url=backend.url("/mcp"), timeout=5)
        runtime = Runtime.start(
            RuntimeConfig(backends=[spec], failure_handling=health),
            reporter,
            lifecycle_policy=RECONNECT,
            leader_election=leadership,
        )
        replica = Replica(name, runtime, member, reporter, backend)
        self.started.append(replica)
        return replica

    def _client(self, sa: str) -> client.ApiClient:
        return self.plane.service_account_api_client(self.namespace, sa)

    def stop_all(self) -> None:
        for replica in self.started:
            replica.runtime.stop(15.0)


def in_api(api: client.ApiClient, namespace: str) -> View:
    """The view the object holds now (read with a GET)."""
    return view_of(get_vmcp(api, namespace))


def view_of(obj: dict[str, Any]) -> View:
    """The view a stored object holds: its ``status.runtime`` (toolhive v0.47+ CRD)."""
    whole: dict[str, Any] = obj.get("status") or {}
    status: dict[str, Any] = whole.get("runtime") or {}
    return str(status.get("phase", "")), [b["name"] for b in status.get("discoveredBackends") or []]


def wait_api(api: client.ApiClient, namespace: str, predicate: Callable[[View], bool], timeout: float) -> float:
    """Poll every 10 ms until the object satisfies ``predicate``; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = in_api(api, namespace)
        if predicate(seen):
            return time.monotonic()
        assert time.monotonic() < deadline, f"the object still shows {seen} after {timeout}s"
        time.sleep(0.01)


def ready(name: str) -> Callable[[View], bool]:
    return lambda seen: seen == (Phase.READY.value, [name])


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 20 ms for up to ``timeout`` seconds; whether it came true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def own_view(replica: Replica, predicate: Callable[[View], bool], what: str, timeout: float | None = None) -> None:
    """Wait until ``replica``'s own status (written or not) satisfies ``predicate``."""
    seen = wait_until(lambda: replica.runtime.status() is not None and predicate(replica.view()), timeout or bound(30))
    assert seen, f"{replica.name} never reached {what} on its own"
