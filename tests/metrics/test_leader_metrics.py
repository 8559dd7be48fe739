"""``vmcp_leader{identity}`` follows leader election against the real API server.

Two replicas of one VirtualMCPServer, each with its own registry: exactly one reports 1
for its identity, the other 0; when the leader stops gracefully (releasing the Lease) its
last scrape says 0 and the follower's says 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from testkit.project import create_vmcp
from testkit.waits import bound
from tests.leadership.kube_support import FAST, RUNTIME_SA, grant
from tests.metrics.scrape import scrape_registry
from tests.sinks import FAST_HEALTH
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.leadership.service import Leadership
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


@pytest.fixture
def replicas(control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str) -> Iterator[list[Runtime]]:
    create_vmcp(admin_api, namespace)
    grant(control_plane, namespace)
    started: list[Runtime] = []
    clients: list[client.ApiClient] = []
    for identity in ("pod-a", "pod-b"):
        settings = LeaderElection(
            identity=identity,
            lease_duration=FAST.lease_duration,
            renew_deadline=FAST.renew_deadline,
            retry_period=FAST.retry_period,
            request_timeout=FAST.request_timeout,
            events=False,
        )
        clients.append(control_plane.service_account_api_client(namespace, RUNTIME_SA))
        leadership = Leadership(settings, "vmcp", namespace, clients[-1])
        clients.append(control_plane.service_account_api_client(namespace, RUNTIME_SA))
        reporter = K8sReporter("vmcp", namespace, api_client=clients[-1], **leadership.reporter_options())
        config = RuntimeConfig(backends=[], failure_handling=FAST_HEALTH)
        started.append(Runtime.start(config, reporter, leader_election=leadership))
    try:
        yield started
    finally:
        for runtime in started:
            runtime.stop(bound(15.0))
        for api in clients:
            api.close()  # type: ignore[no-untyped-call]


def leader_values(runtime: Runtime) -> dict[str, float]:
    """The runtime's ``vmcp_leader`` samples, by identity, once its observer has caught up."""
    metrics = runtime.metrics
    assert metrics is not None
    metrics.flush(bound(10.0))
    samples = scrape_registry(metrics.registry)
    return {dict(labels)["identity"]: value for labels, value in samples.matching("vmcp_leader").items()}


def test_exactly_one_replica_says_it_leads_and_the_other_takes_over(replicas: list[Runtime]) -> None:
    first, second = replicas

    def one_leader() -> tuple[Runtime, Runtime] | None:
        """(leader, follower) once each exports its own identity and exactly one says 1."""
        a, b = leader_values(first), leader_values(second)
        if a == {"pod-a": 1.0} and b == {"pod-b": 0.0}:
            return first, second
        if a == {"pod-a": 0.0} and b == {"pod-b": 1.0}:
            return second, first
        return None

    leader, follower = poll_until(one_leader, timeout=bound(30.0), what="exactly one replica leading")
    assert leader.leading is True
    assert follower.leading is False

    leader.stop(bound(15.0))  # releases the Lease
    poll_until(
        lambda: True if sum(leader_values(follower).values()) == 1.0 else None,
        timeout=bound(30.0),
        what="the follower leading",
    )
    assert sum(leader_values(leader).values()) == 0.0  # it no longer leads
