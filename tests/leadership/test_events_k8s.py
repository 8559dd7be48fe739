"""Events about the VirtualMCPServer, from the leader, against the real API server.

Checked through the API the way ``kubectl describe`` finds them (core/v1 Events whose
``involvedObject`` is the VirtualMCPServer, uid included):

* a flapping backend is one Event per reason with a growing ``series.count``, not one
  Event per flap; ``LeaderElected`` and ``PhaseChanged`` appear;
* a real runtime whose backend goes down and comes back several times reports
  ``BackendUnavailable`` / ``BackendRecovered`` the same way;
* a Role without ``events`` costs the Events and nothing else: statuses still land at
  once, and the log names the missing grant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from testkit.project import create_vmcp, get_vmcp
from tests.leadership.kube_support import FAST, RUNTIME_SA, Member, grant
from tests.servers.fixtures import RunningServer, ServerFactory, mcp_servers
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.leadership.service import Leadership
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

__all__ = ["mcp_servers"]  # fixture used below

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

WITH_EVENTS = LeaderElection(
    lease_duration=FAST.lease_duration,
    renew_deadline=FAST.renew_deadline,
    retry_period=FAST.retry_period,
    request_timeout=FAST.request_timeout,
    events=True,
)
HEALTH = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)
RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=0.5, jitter=0.1))


def described(api: client.ApiClient, namespace: str) -> dict[tuple[str, str], list[Any]]:
    """Events as ``kubectl describe virtualmcpserver vmcp`` selects them, by (reason, note)."""
    vmcp = get_vmcp(api, namespace)
    selector = ",".join(
        (
            "involvedObject.kind=VirtualMCPServer",
            "involvedObject.name=vmcp",
            f"involvedObject.namespace={namespace}",
            f"involvedObject.uid={vmcp['metadata']['uid']}",
        )
    )
    found: dict[tuple[str, str], list[Any]] = {}
    for event in client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector).items:
        found.setdefault((event.reason or "", event.message or ""), []).append(event)
    return found


def count(event: Any) -> int:
    return event.series.count if event.series is not None else 1


@pytest.fixture
def vmcp(admin_api: client.ApiClient, namespace: str) -> str:
    create_vmcp(admin_api, namespace)
    return namespace


@pytest.fixture
def leadership(control_plane: ControlPlane, vmcp: str) -> Iterator[Member]:
    grant(control_plane, vmcp)
    api = control_plane.service_account_api_client(vmcp, RUNTIME_SA)
    member = Member(Leadership(LeaderElection(identity="pod-a", **_timing()), "vmcp", vmcp, api))
    member.leadership.start()
    try:
        yield member
    finally:
        member.leadership.stop(5.0)


def _timing() -> dict[str, Any]:
    return {
        "lease_duration": WITH_EVENTS.lease_duration,
        "renew_deadline": WITH_EVENTS.renew_deadline,
        "retry_period": WITH_EVENTS.retry_period,
        "request_timeout": WITH_EVENTS.request_timeout,
        "events": True,
    }


def status(phase: Phase, alpha: str) -> Status:
    return Status(
        phase=phase,
        message=f"alpha is {alpha}",
        discovered_backends=(DiscoveredBackend("alpha", status=alpha, message=f"alpha {alpha}"),),
        timestamp=datetime.now(UTC),
    )


def test_a_flapping_backend_is_one_event_with_a_growing_series_count(
    leadership: Member, admin_api: client.ApiClient, vmcp: str
) -> None:
    assert leadership.became_leader.wait(10)
    events = leadership.leadership.events
    assert events is not None
    flaps = 10
    events.observe(status(Phase.READY, "ready"))
    for _ in range(flaps):
        events.observe(status(Phase.DEGRADED, "unavailable"))
        events.observe(status(Phase.READY, "ready"))
    events.wait_idle()

    def settled() -> dict[tuple[str, str], list[Any]] | None:
        found = described(admin_api, vmcp)
        down = [e for (reason, _), es in found.items() if reason == "BackendUnavailable" for e in es]
        up = [e for (reason, _), es in found.items() if reason == "BackendRecovered" for e in es]
        return found if sum(map(count, down)) == flaps and sum(map(count, up)) == flaps else None

    found = poll_until(settled, timeout=15, what="every flap counted in the Events")
    by_reason: dict[str, list[Any]] = {}
    for (reason, _), listed in found.items():
        by_reason.setdefault(reason, []).extend(listed)
    assert len(by_reason["BackendUnavailable"]) == 1, "one Event per series, not one per flap"
    assert len(by_reason["BackendRecovered"]) == 1
    unavailable = by_reason["BackendUnavailable"][0]
    assert unavailable.series.count == flaps
    assert unavailable.type == "Warning"
    assert unavailable.message == "backend alpha is unavailable: alpha unavailable"
    assert unavailable.reporting_component == "toolhive.stacklok.dev/vmcp-actors"
    assert unavailable.reporting_instance == "pod-a"
    assert sorted(count(e) for e in by_reason["PhaseChanged"]) == [flaps, flaps]  # Ready->Degraded and back
    (elected,) = by_reason["LeaderElected"]
    assert "pod-a leads VirtualMCPServer" in elected.message


def test_a_runtime_reports_its_backend_going_down_and_recovering_as_events(
    control_plane: ControlPlane, vmcp: str, admin_api: client.ApiClient, mcp_servers: ServerFactory
) -> None:
    grant(control_plane, vmcp)
    runtime, member, server = start_runtime(control_plane, vmcp, mcp_servers)
    try:
        assert member.became_leader.wait(10)
        flaps = 3
        for _ in range(flaps):
            wait_local(runtime, "ready")
            server.kill()
            wait_local(runtime, "unavailable")
            server = mcp_servers.restart(server)
        wait_local(runtime, "ready")

        def settled() -> dict[tuple[str, str], list[Any]] | None:
            found = described(admin_api, vmcp)
            up = [e for (reason, _), es in found.items() if reason == "BackendRecovered" for e in es]
            return found if sum(map(count, up)) == flaps else None

        found = poll_until(settled, timeout=15, what="the recoveries counted")
        down = [e for (reason, _), es in found.items() if reason == "BackendUnavailable" for e in es]
        assert len(down) == 1
        assert count(down[0]) == flaps
        assert any(reason == "LeaderElected" for reason, _ in found)
    finally:
        runtime.stop(15.0)


def test_without_rights_to_events_statuses_still_land_at_once(
    control_plane: ControlPlane,
    vmcp: str,
    admin_api: client.ApiClient,
    mcp_servers: ServerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grant(control_plane, vmcp, events=False)
    runtime, member, server = start_runtime(control_plane, vmcp, mcp_servers)
    try:
        assert member.became_leader.wait(10)
        for _ in range(2):
            for health in ("ready", "unavailable"):
                local_at = wait_local(runtime, health)
                landed_at = wait_api(admin_api, vmcp, health)
                assert landed_at - local_at < 1.0, f"a status took {landed_at - local_at:.2f}s to land"
                if health == "ready":
                    server.kill()
            server = mcp_servers.restart(server)
        assert any("cannot create events" in r.getMessage() for r in caplog.records)
        (line,) = {r.getMessage() for r in caplog.records if "cannot create events" in r.getMessage()}
        assert "events.k8s.io" in line
        assert "status writes are unaffected" in line
        assert described(admin_api, vmcp) == {}
    finally:
        runtime.stop(15.0)


# --------------------------------------------------------------------------- helpers


def start_runtime(plane: ControlPlane, namespace: str, servers: ServerFactory) -> tuple[Runtime, Member, RunningServer]:
    server = servers.echo("streamable-http")
    leadership = Leadership(
        LeaderElection(identity="pod-a", **_timing()),
        "vmcp",
        namespace,
        plane.service_account_api_client(namespace, RUNTIME_SA),
    )
    member = Member(leadership)
    reporter = K8sReporter(
        "vmcp",
        namespace,
        api_client=plane.service_account_api_client(namespace, RUNTIME_SA),
        **leadership.reporter_options(),
    )
    backend = BackendSpec(name="alpha", type="streamable-http", url=server.url("/mcp"), timeout=5)
    runtime = Runtime.start(
        RuntimeConfig(backends=[backend], failure_handling=HEALTH),
        reporter,
        lifecycle_policy=RECONNECT,
        leader_election=leadership,
    )
    return runtime, member, server


def wait_local(runtime: Runtime, health: str) -> float:
    def check() -> float | None:
        current = runtime.status()
        if current is not None and [b.status for b in current.discovered_backends] == [health]:
            return time.monotonic()
        return None

    return poll_until(check, timeout=30, what=f"alpha {health} in the runtime")


def wait_api(api: client.ApiClient, namespace: str, health: str) -> float:
    deadline = time.monotonic() + 10
    while True:
        backends = ((get_vmcp(api, namespace).get("status") or {}).get("runtime") or {}).get("discoveredBackends") or []
        if [b.get("status") for b in backends] == [health]:
            return time.monotonic()
        assert time.monotonic() < deadline, f"alpha never {health} in the API"
        time.sleep(0.01)
