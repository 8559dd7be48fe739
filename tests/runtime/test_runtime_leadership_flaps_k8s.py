"""Two and three runtimes for one VirtualMCPServer, as many views, 60 s: one writer and not a single flap.

Issue 11: without leader election every replica wrote its own view of its backends to
the same status, which flapped between them (4.3 phase flips a minute with 30 s probes,
23.5 with 5 s).  Here real runtimes report to one object, each with its own real MCP
backend and so its own view: ``alpha`` (the leader) Ready, ``gamma`` not Ready (its backend
is killed) and, with three, ``beta`` Ready with its own backend.  For 60 s after all the
views exist:

* a watch on the object (from the resourceVersion at which the leader's view was in
  the API, resumed from the last version it saw, so no version is missed however short)
  sees only the leader's view;
* ``alpha`` leads at every sample, and no other replica ever does;
* the followers' reporters made no request at all, and the API server's audit log (each
  replica acting as its own ServiceAccount) shows requests for the object and writes to
  its status from the leader's identity only.

The replicas run client-go's timing (15/10/2 s), not the shortened one of the failover
tests: a machine with both cores saturated must not cost the leader its lease, which
would be a correct failover, not a flap.  The audit log needs flags the shared control
plane does not have, so the test starts its own (with the same binaries).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from testkit.audit import audit_args, read_audit, requests_by_user
from testkit.cli_tools import TOOLHIVE_CRD_V0_63_0
from testkit.control_plane import ControlPlane
from testkit.crds import install_crd
from testkit.project import create_vmcp, get_vmcp
from testkit.waits import bound
from tests.leadership.kube_support import grant
from tests.runtime.leadership_support import Replica, Replicas, View, own_view, ready, view_of, wait_api, wait_until
from tests.servers.fixtures import RunningServer, ServerFactory, mcp_servers
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION

__all__ = ["mcp_servers"]  # fixture used below

pytestmark = [pytest.mark.integration]

NAMESPACE = "flaps"
WINDOW_S = 60.0
#: client-go's timing: only a leader that really cannot renew for 10 s loses the lease.
TIMING = LeaderElection(events=False)
#: Lenient probes, so the leader's own view holds on a saturated machine; a killed backend still fails within ~6 s.
HEALTH = FailureHandling(
    health_check_interval=2.0, health_check_timeout=1.5, unhealthy_threshold=3, status_reporting_interval=30.0
)
SENTINEL = "vmcp-actors.test/watch-sentinel"


class ObjectWatch:
    """Every version of one object, in order, from a watch resumed at the last resourceVersion seen."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, resource_version: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self.errors: list[object] = []
        self._objects = client.CustomObjectsApi(api)
        self._namespace = namespace
        self._selector = f"metadata.name={name}"
        self._resource_version = resource_version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="object-watch")

    def __enter__(self) -> ObjectWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(bound(15))
        assert not self._thread.is_alive(), "the watch did not end"

    def views(self) -> list[View]:
        return [view_of(obj) for obj in list(self.versions)]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self._objects.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self._namespace,
                    PLURAL,
                    field_selector=self._selector,
                    resource_version=self._resource_version,
                    timeout_seconds=1,
                ):
                    obj = event["object"]
                    if event["type"] == "ERROR":  # e.g. 410 Gone: versions were missed
                        self.errors.append(obj)
                        return
                    self._resource_version = obj["metadata"]["resourceVersion"]
                    self.versions.append(obj)
        except Exception as error:  # the assertions below must hear about it
            self.errors.append(error)


@pytest.fixture
def audited(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[ControlPlane, Path]]:
    """A control plane of its own (the session's binaries) writing an audit log of VirtualMCPServer requests."""
    args, log = audit_args(tmp_path / "audit")
    plane = ControlPlane(control_plane.binaries_dir, workdir=tmp_path / "plane", extra_apiserver_args=args)
    plane.start()
    try:
        install_crd(plane, TOOLHIVE_CRD_V0_63_0)
        plane.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        yield plane, log
    finally:
        plane.stop()


def sa_of(replica: str) -> str:
    return f"vmcp-{replica.removeprefix('pod-')}"


def user_of(replica: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{sa_of(replica)}"


@pytest.mark.timeout(420)
@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("replicas", [2, 3])
def test_runtimes_with_different_views_for_60s_have_one_writer_and_no_flap(
    audited: tuple[ControlPlane, Path], mcp_servers: ServerFactory, replicas: int
) -> None:
    """Two replicas: alpha and gamma (whose backend is dead); three: beta (Ready on its own backend) too."""
    plane, audit_log = audited
    admin = plane.admin_api_client()
    create_vmcp(admin, NAMESPACE)
    names = ["pod-alpha", "pod-beta", "pod-gamma"] if replicas == 3 else ["pod-alpha", "pod-gamma"]
    for name in names:
        grant(plane, NAMESPACE, events=False, sa=sa_of(name))
    group = Replicas(plane, NAMESPACE)
    try:

        def start(name: str, backend: RunningServer) -> Replica:
            return group.start(name, backend, timing=TIMING, health=HEALTH, sa=sa_of(name))

        leader = start("pod-alpha", mcp_servers.echo("streamable-http"))
        assert leader.member.became_leader.wait(bound(30)), "the first replica never led"
        wait_api(admin, NAMESPACE, ready("alpha"), bound(30))
        resource_version = get_vmcp(admin, NAMESPACE)["metadata"]["resourceVersion"]

        with ObjectWatch(plane.admin_api_client(), NAMESPACE, "vmcp", resource_version) as watched:
            followers = []
            if replicas == 3:
                beta = start("pod-beta", mcp_servers.echo("streamable-http"))
                own_view(beta, ready("beta"), "Ready")
                followers.append(beta)
            gamma_backend = mcp_servers.echo("streamable-http")
            gamma = start("pod-gamma", gamma_backend)
            followers.append(gamma)
            own_view(gamma, ready("gamma"), "Ready")
            gamma_backend.kill()  # gamma's view: its only backend is gone
            own_view(gamma, lambda v: v[0] != "Ready" and v[1] == ["gamma"], "a view without a routable backend")
            views = {r.name: r.view() for r in group.started}
            assert len({repr(v) for v in views.values()}) == replicas, f"the views should differ: {views}"

            window_start = time.monotonic()
            samples = 0
            while time.monotonic() - window_start < WINDOW_S:
                leading = [r.name for r in group.started if r.runtime.leading]
                assert leading == ["pod-alpha"], f"after {time.monotonic() - window_start:.1f}s leading: {leading}"
                samples += 1
                time.sleep(0.1)  # sampling who leads over the window; the watch catches every version
            window = time.monotonic() - window_start

            # The watch was live to the end: a change made now reaches it.
            client.CustomObjectsApi(admin).patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, "vmcp", {"metadata": {"annotations": {SENTINEL: "end"}}}
            )
            sentinel = wait_until(
                lambda: any(SENTINEL in (o["metadata"].get("annotations") or {}) for o in list(watched.versions)),
                bound(30),
            )
            assert sentinel, "the watch never delivered the sentinel change: it was not watching"

        assert not watched.errors, f"the watch failed: {watched.errors}"
        seen = watched.views()
        flaps = [view for view in seen if view != ("Ready", ["alpha"])]
        assert not flaps, f"the status showed another view {len(flaps)} times out of {len(seen)}: {flaps[:5]}"

        assert [f.reporter.stats().total_requests for f in followers] == [0] * len(followers), "a follower wrote"
        leader_stats = leader.reporter.stats()
        assert leader_stats.writes >= 1

        events = read_audit(audit_log)
        writes = requests_by_user(
            events, namespace=NAMESPACE, name="vmcp", subresource="status", verbs=("patch", "update")
        )
        anything = requests_by_user(events, namespace=NAMESPACE, name="vmcp")
        runtimes = {user_of(name) for name in names}
        assert set(writes) & runtimes == {user_of("pod-alpha")}, f"status writes by identity: {dict(writes)}"
        assert set(anything) & runtimes == {user_of("pod-alpha")}, f"requests by identity: {dict(anything)}"
        sys.stderr.write(
            f"\n{replicas} replicas, {window:.1f}s window ({samples} leadership samples): "
            f"{len(seen)} versions watched, 0 flaps; audited status writes by identity {dict(writes)}; "
            f"the leader's own count {leader_stats.requests}\n"
        )
    finally:
        group.stop_all()
