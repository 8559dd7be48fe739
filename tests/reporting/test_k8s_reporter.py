"""``K8sReporter`` and ``new_reporter`` against a real kube-apiserver.

Everything the reporter promises is checked where it can actually break: optimistic
concurrency against a second writer, RBAC with a real ServiceAccount token, objects that
disappear and come back, an API server that goes away mid-run, and the request count of
an unchanged status.  Waiting is done on the API (poll with a deadline) or on the actor
(``wait_idle``), never with a bare sleep.
"""

from __future__ import annotations

import functools
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from kubernetes import client, watch

from testkit.control_plane import ControlPlane, iter_manifests, poll_until, raw_request
from testkit.project import DEPLOY_DIR, create_vmcp, get_vmcp
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.errors import KubernetesNotFoundError, KubernetesPermissionError
from vmcp_actors.model.conditions import CONDITION_BACKENDS_DISCOVERED, CONDITION_DEGRADED, CONDITION_READY
from vmcp_actors.model.status import Condition, ConditionStatus, DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, desired_status
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.sinks import LoggingReporter

RUNTIME_SA = "vmcp-actors"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: Retries fast enough that a test waits for the cause to be fixed, not for the backoff.
FAST_RETRY = Backoff(initial=0.05, maximum=0.25, factor=2.0, jitter=0.2)

_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers


def wait_for(check: Callable[[], _T | None], what: str, timeout: float = 15.0) -> _T:
    """Poll ``check`` (normally an API read) until it returns something; fail after ``timeout``."""
    return poll_until(check, timeout=timeout, what=what)


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def put_status(api: client.ApiClient, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    metadata = obj["metadata"]
    return cast(
        dict[str, Any],
        custom(api).replace_namespaced_custom_object_status(
            GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], {**obj, "status": status}
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


def runtime_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of the stored status the runtime owns."""
    status = obj.get("status") or {}
    owned = {k: status.get(k) for k in ("phase", "message", "backendCount", "discoveredBackends", "observedGeneration")}
    owned["conditions"] = [
        c
        for c in status.get("conditions") or []
        if c["type"] in (CONDITION_READY, CONDITION_DEGRADED, CONDITION_BACKENDS_DISCOVERED)
    ]
    return owned


def shows(api: client.ApiClient, namespace: str, status: Status) -> dict[str, Any] | None:
    """The object, once its runtime-owned fields say exactly ``status``."""
    obj = get_vmcp(api, namespace)
    return obj if runtime_fields(obj) == runtime_fields({**obj, "status": desired_status(obj, status, T0)}) else None


def conditions_by_type(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture
def vmcp(admin_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return create_vmcp(admin_api, namespace)


@pytest.fixture
def runtime_rbac(control_plane: ControlPlane, namespace: str) -> None:
    for manifest in iter_manifests(DEPLOY_DIR / "rbac"):
        control_plane.apply_manifest(manifest, namespace=namespace)


@pytest.fixture
def actor_reporters() -> Iterator[Callable[[K8sReporter], ActorReporter]]:
    """Start ``ActorReporter``\\ s around sinks and always shut them down."""
    started: list[Callable[[float | None], None]] = []

    def make(sink: K8sReporter) -> ActorReporter:
        reporter = ActorReporter(sink, backoff=FAST_RETRY, flush_timeout=10.0)
        started.append(reporter.start())
        return reporter

    yield make
    for shutdown in started:
        shutdown(10.0)


# --------------------------------------------------------------------------- tests


def test_status_is_written_read_back_and_shown_in_printer_columns(
    admin_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    reporter = K8sReporter("vmcp", namespace, admin_api)
    first = runtime_status(1, degraded=True)
    reporter.report_status(first)

    obj = get_vmcp(admin_api, namespace)
    status = obj["status"]
    generation = obj["metadata"]["generation"]
    assert status["phase"] == "Ready"
    assert status["message"] == "status #1"
    assert status["backendCount"] == 2
    assert status["observedGeneration"] == generation
    assert [b["name"] for b in status["discoveredBackends"]] == ["backend-0", "backend-1"]
    assert status["discoveredBackends"][0] == {
        "name": "backend-0",
        "url": "http://backend-0:8080/mcp",
        "status": "ready",
    }
    assert [(c["type"], c["status"], c["observedGeneration"]) for c in status["conditions"]] == [
        ("Ready", "True", generation),
        ("BackendsDiscovered", "True", generation),
        ("Degraded", "True", generation),
    ]
    assert reporter.stats().requests == {"get": 1, "update": 1}

    table = raw_request(
        admin_api, "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", headers={"Accept": TABLE_ACCEPT}
    ).json()
    columns = [column["name"] for column in table["columnDefinitions"]]
    (row,) = table["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert (cells["Name"], cells["Phase"], cells["Backends"], cells["Ready"]) == ("vmcp", "Ready", 2, "True")

    # A second, different status is one PUT on the kept object: no GET before it.
    reporter.report_status(runtime_status(2, ready=ConditionStatus.FALSE, phase=Phase.FAILED, backends=0))
    assert reporter.stats().requests == {"get": 1, "update": 2}
    status = get_vmcp(admin_api, namespace)["status"]
    assert status["phase"] == "Failed"
    assert "backendCount" not in status  # omitempty clears them
    assert "discoveredBackends" not in status
    table = raw_request(
        admin_api, "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", headers={"Accept": TABLE_ACCEPT}
    ).json()
    cells = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    assert (cells["Phase"], cells["Backends"], cells["Ready"]) == ("Failed", None, "False")


def test_transition_times_generation_and_removal_of_absent_runtime_conditions(
    admin_api: client.ApiClient, namespace: str, vmcp: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    operator_condition = {
        "type": "GroupRefValidated",
        "status": "True",
        "reason": "GroupRefIsValid",
        "message": "owned by the operator",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    put_status(admin_api, vmcp, {"url": "http://vmcp.example:4483", "conditions": [operator_condition]})
    reporter = K8sReporter("vmcp", namespace, admin_api, qps=0)

    reporter.report_status(runtime_status(1, degraded=True, ready_at=T0))
    obj = get_vmcp(admin_api, namespace)
    assert conditions_by_type(obj)["Ready"]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert conditions_by_type(obj)["Degraded"]["status"] == "True"

    # Same Ready status, new reason text and a later LTT from the runtime: LTT is kept.
    later = T0 + timedelta(minutes=5)
    reporter.report_status(runtime_status(2, ready_at=later))
    obj = get_vmcp(admin_api, namespace)
    conditions = conditions_by_type(obj)
    assert conditions["Ready"]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert conditions["Ready"]["message"] == "status #2"
    assert "Degraded" not in conditions, "a runtime condition absent from the status must be removed"

    # The spec changes (generation 2); Ready flips to False: new LTT, new observedGeneration.
    obj["spec"]["groupRef"]["name"] = "other"
    custom(admin_api).replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp", obj)
    flipped_at = T0 + timedelta(minutes=10)
    reporter.report_status(runtime_status(3, ready=ConditionStatus.FALSE, ready_at=flipped_at))
    obj = get_vmcp(admin_api, namespace)
    conditions = conditions_by_type(obj)
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["observedGeneration"] == 2
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-03-01T12:10:00Z"
    assert conditions["Ready"]["observedGeneration"] == 2
    assert conditions["BackendsDiscovered"]["observedGeneration"] == 2

    # A status without the core conditions removes them too, and says so.
    with caplog.at_level(logging.WARNING, logger="vmcp_actors.reporting.kubernetes.reporter"):
        reporter.report_status(Status(phase=Phase.READY, message="Health monitoring disabled"))
    assert "Ready, BackendsDiscovered" in caplog.text
    obj = get_vmcp(admin_api, namespace)
    assert list(conditions_by_type(obj)) == ["GroupRefValidated"]
    assert conditions_by_type(obj)["GroupRefValidated"] == operator_condition
    assert obj["status"]["url"] == "http://vmcp.example:4483"


def test_concurrent_writer_keeps_its_fields_and_the_reporter_converges(
    admin_api: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[[K8sReporter], ActorReporter],
) -> None:
    """An operator-like writer PUTs ``url`` and its own condition as fast as it can."""
    stop = threading.Event()
    writer_api = control_plane.admin_api_client()
    watch_api = control_plane.admin_api_client()
    writer_done: list[int] = []
    events: list[dict[str, Any]] = []

    def operator_writer() -> None:
        seq = 0
        while not stop.is_set():
            obj = get_vmcp(writer_api, namespace)
            status = dict(obj.get("status") or {})
            seq += 1
            status["url"] = f"http://vmcp-{seq}.example"
            others = [c for c in status.get("conditions") or [] if c["type"] != "GroupRefValidated"]
            status["conditions"] = [
                *others,
                {
                    "type": "GroupRefValidated",
                    "status": "True",
                    "reason": "GroupRefIsValid",
                    "message": str(seq),
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                },
            ]
            try:
                put_status(writer_api, obj, status)
            except client.ApiException as error:
                if error.status != 409:
                    raise
                continue
            writer_done.append(seq)

    def watcher(resource_version: str) -> None:
        while not stop.is_set():
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                custom(watch_api).list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                resource_version=resource_version,
                timeout_seconds=1,
            ):
                obj = event["object"]
                resource_version = obj["metadata"]["resourceVersion"]
                events.append(obj)

    threads = [
        threading.Thread(target=operator_writer, name="operator-writer"),
        threading.Thread(target=watcher, args=(vmcp["metadata"]["resourceVersion"],), name="watcher"),
    ]
    for thread in threads:
        thread.start()
    sink = K8sReporter("vmcp", namespace, admin_api, qps=0)
    reporter = actor_reporters(sink)
    try:
        wait_for(lambda: len(writer_done) >= 5 or None, "the other writer to get going")
        statuses = [
            runtime_status(i, ready=ConditionStatus.TRUE if i % 3 else ConditionStatus.FALSE) for i in range(120)
        ]
        started = time.monotonic()
        for index, status in enumerate(statuses):
            reporter.report_status(status)
            if index % 10 == 9:
                # Let a write land now and then, so the two writers' writes interleave. Waiting on the
                # API server (not on the actor going idle) makes this deterministic: a write that hit
                # conflicts is retried on a timer, and the actor is idle meanwhile.
                wait_for(functools.partial(shows, admin_api, namespace, status), f"status #{index}")
        wait_for(lambda: shows(admin_api, namespace, statuses[-1]), "the reporter's last status")
        elapsed = time.monotonic() - started
        # The writer keeps going after the reporter is done: nothing of ours may be lost.
        writes_at_convergence = len(writer_done)
        wait_for(lambda: len(writer_done) >= writes_at_convergence + 10 or None, "more writes by the other writer")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)

    final = get_vmcp(admin_api, namespace)
    assert shows(admin_api, namespace, statuses[-1]) is not None
    assert final["status"]["url"] == f"http://vmcp-{writer_done[-1]}.example"
    assert conditions_by_type(final)["GroupRefValidated"]["message"] == str(writer_done[-1])
    stats = sink.stats()
    assert stats.writes >= len(statuses) // 10, stats
    assert stats.conflicts >= 1, f"the writers never collided ({stats}); the test proves nothing"
    assert len(writer_done) / max(elapsed, 1e-3) > 5, "the other writer must write many times a second"

    # Every intermediate state: neither writer ever erased or rolled back the other's fields.
    last_writer_seq = last_runtime_seq = 0
    seen_writer = False
    for obj in events:
        stored = obj.get("status") or {}
        conditions = conditions_by_type(obj)
        if "url" in stored:
            seen_writer = True
            seq = int(stored["url"].removeprefix("http://vmcp-").removesuffix(".example"))
            assert int(conditions["GroupRefValidated"]["message"]) == seq
            assert seq >= last_writer_seq, "the other writer's url went backwards"
            last_writer_seq = seq
        else:
            assert not seen_writer, f"the other writer's url was erased at rv {obj['metadata']['resourceVersion']}"
        if "message" in stored:
            runtime_seq = int(stored["message"].removeprefix("status #"))
            assert runtime_seq >= last_runtime_seq, "an older runtime status overwrote a newer one"
            last_runtime_seq = runtime_seq
            assert conditions["Ready"]["message"] == stored["message"], "runtime fields written half"
    assert last_runtime_seq == 119
    assert len(events) > 20


def test_rbac_as_the_runtime_service_account(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    runtime_rbac: None,
    actor_reporters: Callable[[K8sReporter], ActorReporter],
) -> None:
    runtime_api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    sink = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    sink.report_status(runtime_status(1))
    assert get_vmcp(admin_api, namespace)["status"]["message"] == "status #1"

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
    assert (error.verb, error.resource, error.group) == ("update", "virtualmcpservers/status", GROUP)
    message = str(error)
    assert f"system:serviceaccount:{namespace}:{RUNTIME_SA} cannot update virtualmcpservers/status" in message
    assert f"grant 'update' on 'virtualmcpservers/status' (apiGroup {GROUP})" in message
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
    assert get_vmcp(admin_api, namespace)["status"]["message"] == "status #1"
    control_plane.apply_manifest(DEPLOY_DIR / "rbac" / "role.yaml", namespace=namespace)
    wait_for(lambda: shows(admin_api, namespace, pending), "the pending status after the Role is restored")
    reporter.wait_idle()
    assert reporter.stats().pending is False


def test_deleted_and_recreated_object_gets_the_pending_status(
    admin_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[[K8sReporter], ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, admin_api, qps=0)
    reporter = actor_reporters(sink)
    reporter.report_status(runtime_status(1))
    wait_for(lambda: shows(admin_api, namespace, runtime_status(1)), "the first status")

    custom(admin_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp")
    with pytest.raises(KubernetesNotFoundError, match=f"VirtualMCPServer {namespace}/vmcp does not exist"):
        K8sReporter("vmcp", namespace, admin_api, qps=0).report_status(runtime_status(2))

    pending = runtime_status(2, degraded=True)
    reporter.report_status(pending)
    failed = wait_for(lambda: reporter.stats() if reporter.stats().failed_attempts >= 2 else None, "retries")
    assert "does not exist" in failed.last_error
    assert sink.last_seen is None, "the deleted object must not be kept"

    recreated = create_vmcp(admin_api, namespace)
    assert recreated["metadata"]["uid"] != vmcp["metadata"]["uid"]
    obj = wait_for(lambda: shows(admin_api, namespace, pending), "the pending status on the new object")
    assert obj["metadata"]["uid"] == recreated["metadata"]["uid"]


def test_api_server_outage_never_blocks_and_the_latest_status_lands(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[[K8sReporter], ActorReporter],
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
    assert after["status"]["message"] == "status #200"


def test_the_same_status_1000_times_is_written_once(
    admin_api: client.ApiClient,
    namespace: str,
    vmcp: dict[str, Any],
    actor_reporters: Callable[[K8sReporter], ActorReporter],
) -> None:
    sink = K8sReporter("vmcp", namespace, admin_api)  # the default limiter: skips must not spend tokens
    sink.report_status(runtime_status(1))
    written = get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"]
    for _ in range(1000):
        sink.report_status(runtime_status(1))  # equal content, a fresh object each time
    assert get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"] == written
    assert sink.stats().requests == {"get": 1, "update": 1}
    assert sink.stats().skipped_unchanged == 1000

    reporter = actor_reporters(sink)
    for _ in range(1000):
        reporter.report_status(runtime_status(1))
    reporter.wait_idle()
    assert get_vmcp(admin_api, namespace)["metadata"]["resourceVersion"] == written
    assert sink.stats().requests == {"get": 1, "update": 1}


def test_an_old_cache_is_reread_so_a_reassert_repairs_an_overwritten_status(
    admin_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    now = [0.0]

    class Clock:
        def monotonic(self) -> float:
            return now[0]

        def now(self) -> datetime:
            return T0 + timedelta(seconds=now[0])

    sink = K8sReporter("vmcp", namespace, admin_api, clock=Clock(), cache_ttl=30.0)
    sink.report_status(runtime_status(1))
    obj = get_vmcp(admin_api, namespace)
    put_status(admin_api, obj, {**obj["status"], "phase": "Pending", "message": "overwritten by someone"})

    sink.report_status(runtime_status(1))
    assert sink.stats().requests == {"get": 1, "update": 1}, "a fresh cache is trusted"
    now[0] = 31.0
    sink.report_status(runtime_status(1))
    assert sink.stats().requests == {"get": 2, "update": 2}
    assert get_vmcp(admin_api, namespace)["status"]["message"] == "status #1"


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
    assert get_vmcp(admin_api, namespace)["status"]["message"] == "status #7"
    assert isinstance(new_reporter({**env, "VMCP_NAME": ""}), LoggingReporter)
