"""``K8sReporter`` and ``new_reporter`` against a real kube-apiserver with toolhive's v0.63.0 CRD.

That CRD has ``status.runtime``: the runtime's whole snapshot goes there, by server-side apply
as field manager ``vmcp-actors``, and nothing at the top level is written by it (checked in
``managedFields``).  RBAC is on and the reporter runs as the ServiceAccount from
``deploy/rbac`` wherever permissions matter.  Objects that disappear and come back, an API
server that goes away mid-run and the request count of an unchanged status are checked where
they can actually break.  Waiting is done on the API (poll with a deadline) or on the actor
(``wait_idle``), never with a bare sleep.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.project import DEPLOY_DIR, create_vmcp, get_vmcp
from tests.reporting.kube_support import (
    FIELD_MANAGER,
    RUNTIME_SA,
    T0,
    actor_reporters,
    custom,
    put_status,
    runtime_rbac,
    runtime_status,
    says,
    shows,
    status_fields_owned_by,
    wait_for,
)
from vmcp_actors.actorkit.timers import ManualClock
from vmcp_actors.errors import KubernetesNotFoundError, KubernetesPermissionError
from vmcp_actors.model.status import ConditionStatus, Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.sinks import LoggingReporter

__all__ = ["actor_reporters", "runtime_rbac"]  # fixtures used by the tests below


@pytest.fixture
def vmcp(admin_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return create_vmcp(admin_api, namespace)


@pytest.fixture
def runtime_api(control_plane: ControlPlane, namespace: str, runtime_rbac: None) -> client.ApiClient:
    """A client acting as the runtime's ServiceAccount, with deploy/rbac's Role."""
    return control_plane.service_account_api_client(namespace, RUNTIME_SA)


def conditions_by_type(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in section.get("conditions") or []}


# --------------------------------------------------------------------------- tests


def test_the_status_lands_in_status_runtime_and_nothing_at_the_top_level_is_written(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    reporter = K8sReporter("vmcp", namespace, runtime_api)
    reporter.report_status(runtime_status(1, degraded=True))

    obj = get_vmcp(admin_api, namespace)
    runtime = obj["status"]["runtime"]
    assert runtime["phase"] == "Ready"
    assert runtime["message"] == "status #1"
    assert runtime["backendCount"] == 2
    assert [b["name"] for b in runtime["discoveredBackends"]] == ["backend-0", "backend-1"]
    assert runtime["discoveredBackends"][0] == {
        "name": "backend-0",
        "url": "http://backend-0:8080/mcp",
        "status": "ready",
    }
    assert [(c["type"], c["status"]) for c in runtime["conditions"]] == [
        ("Ready", "True"),
        ("BackendsDiscovered", "True"),
        ("Degraded", "True"),
    ]
    assert all("observedGeneration" not in c for c in runtime["conditions"]), "the generation is not known"
    assert set(obj["status"]) == {"phase", "runtime"}, "only the CRD's default phase besides ours"
    assert obj["status"]["phase"] == "Pending"
    assert set(status_fields_owned_by(obj, FIELD_MANAGER)) == {"f:runtime"}, "no top-level field is ours"
    (entry,) = [m for m in obj["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER]
    assert (entry["operation"], entry["subresource"]) == ("Apply", "status")
    stats = reporter.stats()
    assert stats.requests == {"get": 1, "apply": 1}, "one read at start, then one apply"
    assert (stats.layout, stats.method) == ("runtime", "apply")

    # A second, different status is one apply: no GET, no resourceVersion.
    reporter.report_status(runtime_status(2, ready=ConditionStatus.FALSE, phase=Phase.FAILED, backends=0))
    assert reporter.stats().requests == {"get": 1, "apply": 2}
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert runtime["phase"] == "Failed"
    assert "backendCount" not in runtime, "a field the runtime owned and left out is removed"
    assert "discoveredBackends" not in runtime
    assert "Degraded" not in conditions_by_type(runtime), "an absent runtime condition is removed"


def test_transition_times_move_only_on_a_flip_even_across_a_restart(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    first = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    first.report_status(runtime_status(1, ready_at=T0))
    assert conditions_by_type(get_vmcp(admin_api, namespace)["status"]["runtime"])["Ready"]["lastTransitionTime"] == (
        "2026-03-01T12:00:00Z"
    )
    # A new process (or a new leader) builds Ready=True stamped with its own start: it reads
    # the object once and keeps the stored time, since Ready did not flip.
    later = T0 + timedelta(minutes=5)
    second = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    second.report_status(runtime_status(2, ready_at=later))
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert conditions_by_type(runtime)["Ready"]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert conditions_by_type(runtime)["Ready"]["message"] == "status #2"
    assert second.stats().requests == {"get": 1, "apply": 1}

    flipped_at = T0 + timedelta(minutes=10)
    second.report_status(runtime_status(3, ready=ConditionStatus.FALSE, ready_at=flipped_at))
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert conditions_by_type(runtime)["Ready"]["lastTransitionTime"] == "2026-03-01T12:10:00Z"
    assert second.stats().requests == {"get": 1, "apply": 2}, "judged against the last apply, not a read"

    # After a leader change the reporter reads once more, then applies.
    second.resync()
    second.report_status(runtime_status(4, ready=ConditionStatus.FALSE, ready_at=flipped_at + timedelta(minutes=1)))
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert conditions_by_type(runtime)["Ready"]["lastTransitionTime"] == "2026-03-01T12:10:00Z"
    assert second.stats().requests == {"get": 2, "apply": 3}


def test_observed_generation_only_when_the_operator_says_which_generation_the_config_came_from(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    obj = get_vmcp(admin_api, namespace)
    obj["spec"]["groupRef"]["name"] = "other"
    custom(admin_api).replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp", obj)
    assert get_vmcp(admin_api, namespace)["metadata"]["generation"] == 2

    K8sReporter("vmcp", namespace, runtime_api, qps=0).report_status(runtime_status(1))
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert all("observedGeneration" not in c for c in runtime["conditions"]), "the object's generation is not ours"

    K8sReporter("vmcp", namespace, runtime_api, qps=0, observed_generation=1).report_status(runtime_status(2))
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert {c["observedGeneration"] for c in runtime["conditions"]} == {1}, "the config came from generation 1"


def test_rbac_as_the_runtime_service_account(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    runtime_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[..., ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    sink.report_status(runtime_status(1))
    assert get_vmcp(admin_api, namespace)["status"]["runtime"]["message"] == "status #1"

    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.delete_namespaced_role(RUNTIME_SA, namespace)

    def write_forbidden() -> KubernetesPermissionError | None:
        try:
            sink.report_status(runtime_status(2))
        except KubernetesPermissionError as error:
            return error
        # The authorizer has not seen the deletion yet: put #1 back, so #2 never stays.
        sink.report_status(runtime_status(1))
        return None

    error = wait_for(write_forbidden, "the Role removal to apply")
    assert (error.verb, error.resource, error.group) == ("patch", "virtualmcpservers/status", GROUP)
    message = str(error)
    assert f"system:serviceaccount:{namespace}:{RUNTIME_SA} cannot patch virtualmcpservers/status" in message
    assert f"grant 'patch' on 'virtualmcpservers/status' (apiGroup {GROUP})" in message
    assert f"in namespace {namespace}" in message

    # A reporter that still has to read the object is missing 'get' first.
    with pytest.raises(KubernetesPermissionError) as caught:
        K8sReporter("vmcp", namespace, runtime_api, qps=0).report_status(runtime_status(2))
    assert (caught.value.verb, caught.value.resource) == ("get", "virtualmcpservers")
    assert "grant 'get' on 'virtualmcpservers'" in str(caught.value)

    # Through the actor: the failure is retried, never raised; the fix lets the status land.
    reporter = actor_reporters(sink)
    pending = runtime_status(3)
    reporter.report_status(pending)
    failed = wait_for(lambda: reporter.stats() if reporter.stats().failed_attempts >= 2 else None, "retries")
    assert "KubernetesPermissionError" in failed.last_error
    assert "virtualmcpservers/status" in failed.last_error
    assert get_vmcp(admin_api, namespace)["status"]["runtime"]["message"] == "status #1"
    control_plane.apply_manifest(DEPLOY_DIR / "rbac" / "role.yaml", namespace=namespace)
    wait_for(lambda: shows(admin_api, namespace, pending), "the pending status after the Role is restored")
    reporter.wait_idle()
    assert reporter.stats().pending is False


def test_deleted_and_recreated_object_gets_the_pending_status(
    admin_api: client.ApiClient,
    runtime_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[..., ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    reporter = actor_reporters(sink)
    reporter.report_status(runtime_status(1))
    wait_for(lambda: shows(admin_api, namespace, runtime_status(1)), "the first status")

    custom(admin_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp")
    with pytest.raises(KubernetesNotFoundError, match=f"VirtualMCPServer {namespace}/vmcp does not exist"):
        K8sReporter("vmcp", namespace, runtime_api, qps=0).report_status(runtime_status(2))

    pending = runtime_status(2, degraded=True)
    reporter.report_status(pending)
    failed = wait_for(lambda: reporter.stats() if reporter.stats().failed_attempts >= 2 else None, "retries")
    assert "does not exist" in failed.last_error
    assert sink.last_seen is None, "the deleted object must not be kept"

    recreated = create_vmcp(admin_api, namespace)
    assert recreated["metadata"]["uid"] != vmcp["metadata"]["uid"]
    obj = wait_for(lambda: shows(admin_api, namespace, pending), "the pending status on the new object")
    assert obj["metadata"]["uid"] == recreated["metadata"]["uid"]


def test_a_recreated_object_gets_even_the_status_written_before_it_was_deleted(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    reporter.report_status(runtime_status(1))
    custom(admin_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp")
    with pytest.raises(KubernetesNotFoundError):
        reporter.report_status(runtime_status(2))
    create_vmcp(admin_api, namespace)
    reporter.report_status(runtime_status(1))  # what the old object held: the new one does not
    assert says(get_vmcp(admin_api, namespace), runtime_status(1))


def test_api_server_outage_never_blocks_and_the_latest_status_lands(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[..., ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, admin_api, request_timeout=2.0)
    reporter = actor_reporters(sink)
    reporter.report_status(runtime_status(0))
    wait_for(lambda: shows(admin_api, namespace, runtime_status(0)), "the status before the outage")

    control_plane.stop_apiserver(graceful=False)
    try:
        statuses = [runtime_status(i, degraded=bool(i % 2)) for i in range(1, 201)]
        durations: list[float] = []
        for index, status in enumerate(statuses):
            started = time.perf_counter()
            reporter.report_status(status)
            durations.append(time.perf_counter() - started)
            if index == 0:
                wait_for(lambda: reporter.stats().failed_attempts >= 2 or None, "writes to fail during the outage")
        # A call that tried the API would take a connection attempt (about a millisecond
        # even when refused); the hand-off takes microseconds.  The max allows for the
        # scheduler of a loaded machine, not for I/O.
        assert statistics.median(durations) < 1e-4, f"report_status took {statistics.median(durations):.6f}s"
        assert max(durations) < 0.25, f"report_status blocked for {max(durations):.3f}s while the API server was down"
        failing = reporter.stats()
        assert failing.pending
        assert "KubernetesTransientError" in failing.last_error
    finally:
        control_plane.start_apiserver()

    wait_for(lambda: shows(admin_api, namespace, statuses[-1]), "the latest status after recovery")
    reporter.wait_idle()
    stats = reporter.stats()
    assert not stats.pending
    before = get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"]
    reporter.report_status(statuses[-1])
    reporter.wait_idle()
    after = get_vmcp(admin_api, namespace)
    assert after["metadata"]["resourceVersion"] == before, "nothing may be written after the latest status"
    assert after["status"]["runtime"]["message"] == "status #200"


def test_the_same_status_1000_times_is_written_once(
    admin_api: client.ApiClient,
    runtime_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[..., ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, runtime_api)  # the default limiter: skips must not spend tokens
    sink.report_status(runtime_status(1))
    written = get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"]
    for _ in range(1000):
        sink.report_status(runtime_status(1))  # equal content, a fresh object each time
    assert get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"] == written
    assert sink.stats().requests == {"get": 1, "apply": 1}
    assert sink.stats().skipped_unchanged == 1000

    reporter = actor_reporters(sink)
    for _ in range(1000):
        reporter.report_status(runtime_status(1))
    reporter.wait_idle()
    assert get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"] == written
    assert sink.stats().requests == {"get": 1, "apply": 1}


def test_after_the_cache_ttl_an_unchanged_status_is_applied_again_and_repairs_an_overwrite(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    clock = ManualClock()
    sink = K8sReporter("vmcp", namespace, runtime_api, clock=clock, sleep=clock.advance, cache_ttl=30.0)
    sink.report_status(runtime_status(1))
    obj = get_vmcp(admin_api, namespace)
    runtime = {**obj["status"]["runtime"], "phase": "Pending", "message": "overwritten by someone"}
    put_status(admin_api, obj, {**obj["status"], "runtime": runtime})

    sink.report_status(runtime_status(1))
    assert sink.stats().requests == {"get": 1, "apply": 1}, "a fresh write is trusted"
    clock.advance(31.0)
    sink.report_status(runtime_status(1))
    assert sink.stats().requests == {"get": 1, "apply": 2}, "re-applied: one request, no read"
    assert get_vmcp(admin_api, namespace)["status"]["runtime"]["message"] == "status #1"


def test_a_status_without_core_conditions_is_written_and_logged(
    admin_api: client.ApiClient,
    runtime_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    reporter.report_status(runtime_status(1, degraded=True))
    with caplog.at_level(logging.WARNING, logger="vmcp_actors.reporting.kubernetes.reporter"):
        reporter.report_status(Status(phase=Phase.READY, message="Health monitoring disabled"))
    assert "Ready, BackendsDiscovered" in caplog.text
    runtime = get_vmcp(admin_api, namespace)["status"]["runtime"]
    assert runtime == {"phase": "Ready", "message": "Health monitoring disabled"}


class _Gate:
    """A leadership gate the test opens by hand: ``term`` is None while another replica leads."""

    def __init__(self) -> None:
        self.term: int | None = None

    def is_leading(self, now: float | None = None) -> bool:
        return self.term is not None

    def leading_term(self, now: float | None = None) -> int | None:
        return self.term


def test_a_gate_that_is_closed_withholds_the_write(
    admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    gate = _Gate()
    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0, gate=gate)
    reporter.report_status(runtime_status(1))
    assert "runtime" not in (get_vmcp(admin_api, namespace).get("status") or {})
    assert (reporter.stats().withheld, reporter.stats().total_requests) == (1, 0)
    gate.term = 1  # this replica starts leading: a new term, so the object is read again first
    reporter.report_status(runtime_status(1))
    assert says(get_vmcp(admin_api, namespace), runtime_status(1))


def test_new_reporter_with_a_kubeconfig_writes_to_the_cluster(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str, vmcp: dict[str, Any], tmp_path: Path
) -> None:
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "kubeconfig")
    env = {"VMCP_NAME": "vmcp", "VMCP_NAMESPACE": namespace, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    reporter = new_reporter(env)
    assert isinstance(reporter, K8sReporter)
    shutdown = reporter.start()
    try:
        reporter.report_status(runtime_status(7))
    finally:
        shutdown(5.0)
    assert get_vmcp(admin_api, namespace)["status"]["runtime"]["message"] == "status #7"
    assert isinstance(new_reporter({**env, "VMCP_NAME": ""}), LoggingReporter)
