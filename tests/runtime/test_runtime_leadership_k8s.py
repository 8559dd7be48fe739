"""Several runtimes for one VirtualMCPServer, each with its own view, against the real API server.

Every replica runs real MCP backends and builds its own status; each writes through its
own ``K8sReporter`` as the runtime's ServiceAccount, gated by its own elector.  Their
views differ on purpose (replica A serves backend ``alpha``, B serves ``beta``), so the
object says whose status it holds:

* exactly one replica writes, and the status never flaps between the views (a short
  check with two replicas; three replicas over 60 s, watched and audited, are in
  ``test_runtime_leadership_flaps_k8s``);
* a graceful stop of the leader: its final status is written, the Lease released, and
  the follower's status replaces it within 1 s;
* a killed leader (its elector stopped without releasing, its sink closed, as SIGKILL
  leaves things): the follower's status is visible within the lease duration + 2 s
  (``benchmarks/bench_failover`` kills a real leader process);
* an API server outage longer than the renew deadline: the leader stops writing (no
  request at all, even as its status changes); when the server returns exactly one
  leads and its latest status lands.

Timing is shortened (lease 3 s, renew deadline 2 s, retry 0.5 s; see
``tests/leadership/kube_support``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.project import create_vmcp
from tests.leadership.kube_support import FAST, grant
from tests.runtime.leadership_support import Replica, Replicas, in_api, own_view, ready, wait_api, wait_until
from tests.servers.fixtures import ServerFactory, mcp_servers

__all__ = ["mcp_servers"]  # fixture used below

pytestmark = [pytest.mark.integration]


@pytest.fixture
def replicas(control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str) -> Iterator[Replicas]:
    create_vmcp(admin_api, namespace)
    grant(control_plane, namespace)
    group = Replicas(control_plane, namespace)
    try:
        yield group
    finally:
        group.stop_all()


def leader_and_follower(
    replicas: Replicas, servers: ServerFactory, admin_api: client.ApiClient
) -> tuple[Replica, Replica]:
    first = replicas.start("pod-alpha", servers.echo("streamable-http"))
    assert first.member.became_leader.wait(10)
    second = replicas.start("pod-beta", servers.echo("streamable-http"))
    wait_api(admin_api, replicas.namespace, ready("alpha"), 30)
    own_view(second, ready("beta"), "Ready")
    return first, second


@pytest.mark.usefixtures("no_leaks")
def test_only_the_leader_writes_and_the_status_never_flaps(
    replicas: Replicas, mcp_servers: ServerFactory, admin_api: client.ApiClient
) -> None:
    leader, follower = leader_and_follower(replicas, mcp_servers, admin_api)
    assert (leader.runtime.leading, follower.runtime.leading) == (True, False)
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        assert in_api(admin_api, replicas.namespace) == ("Ready", ["alpha"])
        time.sleep(0.05)
    assert follower.reporter.stats().total_requests == 0, "the follower made API requests for the status"
    assert leader.reporter.stats().writes >= 1


@pytest.mark.usefixtures("no_leaks")
def test_a_graceful_stop_hands_over_and_the_follower_replaces_the_final_status_within_1s(
    replicas: Replicas, mcp_servers: ServerFactory, admin_api: client.ApiClient
) -> None:
    leader, follower = leader_and_follower(replicas, mcp_servers, admin_api)
    leader.runtime.stop(15.0)
    stopped_leading = leader.member.stopped[-1]
    assert follower.member.became_leader.wait(5)
    replaced_at = wait_api(admin_api, replicas.namespace, ready("beta"), 5)
    took = replaced_at - stopped_leading
    sys.stderr.write(f"\ngraceful stop: the follower's status visible {took * 1000:.0f} ms after the hand-over\n")
    assert took <= 1.0
    assert follower.runtime.leading


@pytest.mark.usefixtures("no_leaks")
def test_a_killed_leaders_follower_writes_within_the_lease_duration_plus_2s(
    replicas: Replicas, mcp_servers: ServerFactory, admin_api: client.ApiClient
) -> None:
    leader, _ = leader_and_follower(replicas, mcp_servers, admin_api)
    killed_at = time.monotonic()
    assert leader.runtime.leadership is not None
    leader.runtime.leadership.kill()  # the process is gone: no release, no more writes
    replaced_at = wait_api(admin_api, replicas.namespace, ready("beta"), FAST.lease_duration + 4)
    took = replaced_at - killed_at
    sys.stderr.write(f"\nkilled leader: the follower's status visible {took * 1000:.0f} ms after the kill\n")
    assert took <= FAST.lease_duration + 2
    leader.runtime.stop(15.0)  # its final status must not be written: it no longer leads
    assert in_api(admin_api, replicas.namespace) == ("Ready", ["beta"])


def test_an_outage_stops_the_leaders_writes_and_one_leader_writes_the_latest_status_after_it(
    replicas: Replicas, mcp_servers: ServerFactory, admin_api: client.ApiClient, control_plane: ControlPlane
) -> None:
    leader, _ = leader_and_follower(replicas, mcp_servers, admin_api)
    control_plane.stop_apiserver(graceful=False)
    try:
        assert wait_until(lambda: bool(leader.member.stopped), FAST.renew_deadline + 2), "the leader kept leading"
        assert not leader.runtime.leading
        before = leader.reporter.stats().total_requests
        leader.backend.kill()  # its view changes while it cannot lead
        assert wait_until(lambda: leader.view()[0] != "Ready", 15), "the leader never saw its backend go"
        time.sleep(FAST.lease_duration)  # an observation window: a whole lease of changes, and no request
        assert leader.reporter.stats().total_requests == before, "a replica that cannot lead made requests"
    finally:
        control_plane.start_apiserver()
    assert wait_until(lambda: sum(r.runtime.leading is True for r in replicas.started) == 1, 15), "nobody leads"
    (now_leading,) = [r for r in replicas.started if r.runtime.leading]
    expected = now_leading.view()
    wait_api(admin_api, replicas.namespace, lambda seen: seen == expected, 15)
    assert sum(r.runtime.leading is True for r in replicas.started) == 1
