"""Leader election against the real kube-apiserver, as the runtime's ServiceAccount.

Two and three electors in one process, each with its own identity and client: exactly
one leads; a killed leader (its elector stopped without releasing, as SIGKILL leaves it)
is replaced within the lease duration + 2 s; a released Lease is taken within 1 s
(followers watch it); an API server down for longer than the renew deadline leaves
nobody leading, and when it returns exactly one leads again.

Timing is shortened (lease 3 s, renew deadline 2 s, retry 0.5 s; see kube_support).
Failover times are measured five times each and their medians printed.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from tests.leadership.kube_support import (
    FAST,
    Member,
    grant,
    group,
    read_lease,
    wait_for,
    watch_at_most_one_leader,
)

# no_leaks on every test but the outage one: a restarted kube-apiserver is a new child process.
pytestmark = [pytest.mark.integration]

RUNS = 5


@pytest.fixture
def rbac(control_plane: ControlPlane, namespace: str) -> str:
    grant(control_plane, namespace)
    return namespace


def report(name: str, samples: list[float]) -> None:
    sys.stderr.write(
        f"\n{name}: median {statistics.median(samples) * 1000:.0f} ms over {len(samples)} runs "
        f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})\n"
    )


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("replicas", [2, 3])
def test_exactly_one_of_several_electors_leads(
    control_plane: ControlPlane, rbac: str, admin_api: client.ApiClient, replicas: int
) -> None:
    with group(control_plane, rbac, f"vmcp-{replicas}") as electors:
        for index in range(replicas):
            electors.add(f"pod-{index}")
        leader = electors.one_leader(timeout=10)
        # A few renew periods: never two leaders, and the same one all along.
        assert watch_at_most_one_leader(electors, 2.0) > 0
        assert electors.leaders() == [leader]
        lease = read_lease(admin_api, rbac, f"vmcp-{replicas}-vmcp-status")
        spec = lease["spec"]
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseDurationSeconds"] == 3
        assert spec["leaseTransitions"] == 0
        assert spec["acquireTime"]
        assert spec["renewTime"] > spec["acquireTime"]
        assert [m.leadership.observed_leader for m in electors.members] == [leader.identity] * replicas


@pytest.mark.usefixtures("no_leaks")
def test_a_killed_leader_is_replaced_within_the_lease_duration_plus_2s(
    control_plane: ControlPlane, rbac: str, admin_api: client.ApiClient
) -> None:
    bound = FAST.lease_duration + 2.0
    times: list[float] = []
    with group(control_plane, rbac, "killed") as electors:
        leader = electors.add("pod-a")
        assert leader.became_leader.wait(10)
        followers = [electors.add("pod-b"), electors.add("pod-c")]
        for run in range(RUNS):
            # Followers that have watched a couple of renewals, as in a running Deployment.
            for follower in followers:
                sees(follower, leader)
            # Let renewals pass, and kill at a random moment between two of them: the
            # successor's lease clock started at the last renewal it saw.
            time.sleep(2 * FAST.retry_period + random.Random(run).uniform(0, FAST.retry_period))
            killed_at = time.monotonic()
            leader.leadership.kill()
            assert not leader.leading
            successor = wait_for(lambda: next(iter(electors.leaders()), None), "a successor", bound + 1)
            took = successor.started[-1] - killed_at
            assert took <= bound, f"failover took {took:.2f}s"
            # Not sooner than the lease the dead leader last renewed (at most a retry period ago).
            assert took >= FAST.lease_duration - FAST.retry_period - 0.1
            times.append(took)
            followers = [f for f in followers if f is not successor] + [electors.add(f"pod-{run}")]
            leader = successor
        lease = read_lease(admin_api, rbac, "killed-vmcp-status")
        assert lease["spec"]["leaseTransitions"] == RUNS
    report("SIGKILL-like failover (lease 3 s)", times)


@pytest.mark.usefixtures("no_leaks")
def test_a_released_lease_is_taken_within_one_second(
    control_plane: ControlPlane, rbac: str, admin_api: client.ApiClient
) -> None:
    times: list[float] = []
    with group(control_plane, rbac, "released") as electors:
        leader = electors.add("pod-a")
        leader.became_leader.wait(10)
        for run in range(RUNS):
            follower = electors.add(f"pod-{run}")
            sees(follower, leader)
            stop_at = time.monotonic()
            assert leader.leadership.stop(5.0), "the release did not complete"
            assert leader.stopped
            assert leader.stopped[-1] >= stop_at
            assert follower.became_leader.wait(5), "no follower took over"
            took = follower.started[0] - stop_at
            assert took <= 1.0, f"graceful failover took {took:.2f}s"
            times.append(took)
            # The gap between the old leader stopping and the new one starting.
            assert follower.started[0] - leader.stopped[-1] <= 1.0
            leader = follower
        assert read_lease(admin_api, rbac, "released-vmcp-status")["spec"]["holderIdentity"] == leader.identity
    report("graceful failover (release + watch)", times)
    # Polling alone takes a jittered retry period (0.5-1.1 s); the watch takes one round trip.
    assert statistics.median(times) < FAST.retry_period


@pytest.mark.usefixtures("no_leaks")
def test_a_graceful_stop_of_the_only_replica_leaves_the_lease_released(
    control_plane: ControlPlane, rbac: str, admin_api: client.ApiClient
) -> None:
    with group(control_plane, rbac, "alone") as electors:
        only = electors.add("pod-a")
        only.became_leader.wait(10)
        assert only.leadership.stop(5.0)
    spec = read_lease(admin_api, rbac, "alone-vmcp-status")["spec"]
    assert spec.get("holderIdentity", "") == ""
    assert spec["leaseDurationSeconds"] == 1


def test_an_api_server_outage_stops_the_leader_and_one_leads_after_it(
    control_plane: ControlPlane, rbac: str, admin_api: client.ApiClient
) -> None:
    with group(control_plane, rbac, "outage") as electors:
        first = electors.add("pod-a")
        first.became_leader.wait(10)
        electors.add("pod-b")
        electors.add("pod-c")
        watch_at_most_one_leader(electors, 1.0)
        control_plane.stop_apiserver(graceful=False)
        try:
            stopped_at = time.monotonic()
            wait_for(lambda: not electors.leaders() or None, "the leader to stop leading", FAST.renew_deadline + 2)
            # It stopped by its renew deadline, counted from its last renewal (at most a retry period earlier).
            assert first.stopped
            assert first.stopped[-1] - stopped_at <= FAST.renew_deadline + 0.5
            # Down for longer than the lease: nobody leads meanwhile.
            assert watch_at_most_one_leader(electors, FAST.lease_duration) == 0
        finally:
            control_plane.start_apiserver()
        back_at = time.monotonic()
        leader = electors.one_leader(timeout=15)
        sys.stderr.write(f"\nleader again {time.monotonic() - back_at:.2f}s after the API server was ready\n")
        assert watch_at_most_one_leader(electors, 2.0) > 0
        assert electors.leaders() == [leader]
        assert read_lease(admin_api, rbac, "outage-vmcp-status")["spec"]["holderIdentity"] == leader.identity


@pytest.mark.usefixtures("no_leaks")
def test_leadership_without_lease_rights_never_leads_and_says_why(
    control_plane: ControlPlane, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    grant(control_plane, namespace, leases=False)
    with group(control_plane, namespace, "denied") as electors:
        member = electors.add("pod-a")
        wait_for(lambda: _logged(caplog, "cannot get leases") or None, "the 403 in the log", 10)
        assert not member.leading
        assert not member.started
    (line,) = {r.getMessage() for r in caplog.records if "cannot get leases" in r.getMessage()}
    assert "coordination.k8s.io" in line
    assert "deploy/rbac/role.yaml" in line


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


def sees(follower: Member, leader: Member) -> None:
    """Wait until ``follower`` has seen ``leader``'s Lease (so its clock for the lease runs)."""
    wait_for(lambda: follower.leadership.observed_leader == leader.identity or None, "the follower to see it", 10)
