"""The runtime next to an operator that writes the same object: ownership by server-side apply.

* An operator-like projector (as toolhive's status collector does) copies ``status.runtime``
  to the top level with GET+PUT: it sees every runtime write, and the two never touch each
  other's fields.
* An operator-like writer does GET+PUT of the whole status every 100 ms while the runtime's
  status keeps changing: the runtime's requests per written status is exactly 1.0 (counted
  by the reporter and by the API server's ``apiserver_request_total``), nothing of the other
  writer's is lost, and the runtime's fields converge within 1 s of the last change.  With
  the update path this cost 2.87-2.98 requests per status, with 409s on half the writes.

The runtime writes as the ServiceAccount from ``deploy/rbac``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from testkit.control_plane import ControlPlane
from testkit.project import create_vmcp, get_vmcp
from tests.reporting.kube_support import (
    FIELD_MANAGER,
    RUNTIME_SA,
    actor_reporters,
    apiserver_requests,
    custom,
    put_status,
    runtime_rbac,
    runtime_status,
    says,
    status_fields_owned_by,
    wait_for,
)
from vmcp_actors.model.status import ConditionStatus, Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, StatusLayout
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

__all__ = ["actor_reporters", "runtime_rbac"]  # fixtures used by the tests below

OPERATOR = "toolhive-operator"
#: How long the runtime's status keeps changing next to the operator-like writer.
CHANGING_FOR_S = 8.0


class Watcher:
    """Records every version of the object (monotonic arrival time, object) from a watch."""

    def __init__(self, api: client.ApiClient, namespace: str, resource_version: str) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._api = api
        self._namespace = namespace
        self._resource_version = resource_version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher")

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                custom(self._api).list_namespaced_custom_object,
                GROUP,
                VERSION,
                self._namespace,
                PLURAL,
                resource_version=self._resource_version,
                timeout_seconds=1,
            ):
                obj = event["object"]
                self._resource_version = obj["metadata"]["resourceVersion"]
                self.events.append((time.monotonic(), obj))


def projected(runtime: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """``status`` with ``runtime`` copied to the top level, as toolhive's collector projects it."""
    out = dict(status)
    for key in ("phase", "message", "discoveredBackends", "backendCount"):
        if key in runtime:
            out[key] = runtime[key]
        else:
            out.pop(key, None)
    ours = {c["type"]: c for c in runtime.get("conditions") or []}
    kept = [c for c in status.get("conditions") or [] if c["type"] not in ours]
    out["conditions"] = [*kept, *ours.values()]
    return out


@pytest.fixture
def runtime_api(control_plane: ControlPlane, namespace: str, runtime_rbac: None) -> client.ApiClient:
    return control_plane.service_account_api_client(namespace, RUNTIME_SA)


def test_an_operator_like_projector_sees_every_runtime_change(
    control_plane: ControlPlane, admin_api: client.ApiClient, runtime_api: client.ApiClient, namespace: str
) -> None:
    vmcp = create_vmcp(admin_api, namespace)
    projector_api = control_plane.admin_api_client()
    stop = threading.Event()
    seen: list[str] = []  # status.runtime.message of every version the projector's watch delivered

    def project() -> None:
        resource_version = vmcp["metadata"]["resourceVersion"]
        while not stop.is_set():
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                custom(projector_api).list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                resource_version=resource_version,
                timeout_seconds=1,
            ):
                obj = event["object"]
                resource_version = obj["metadata"]["resourceVersion"]
                status = obj.get("status") or {}
                runtime = status.get("runtime")
                if runtime is None:
                    continue
                if not seen or seen[-1] != runtime.get("message"):
                    seen.append(runtime.get("message", ""))
                wanted = projected(runtime, status)
                if wanted != status:
                    try:
                        put_status(projector_api, obj, wanted, OPERATOR)
                    except client.ApiException as error:
                        if error.status != 409:
                            raise  # a newer version is on its way through the watch

    projector = threading.Thread(target=project, name="projector")
    projector.start()
    try:
        reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0)
        statuses = [
            runtime_status(i, ready=ConditionStatus.FALSE if i % 3 == 0 else ConditionStatus.TRUE, degraded=i % 2 == 0)
            for i in range(1, 16)
        ]
        for status in statuses:
            reporter.report_status(status)

        def converged() -> dict[str, Any] | None:
            obj = get_vmcp(admin_api, namespace)
            status = obj["status"]
            return (
                obj
                if status.get("message") == "status #15" and projected(status["runtime"], status) == status
                else None
            )

        final = wait_for(converged, "the projector to copy the runtime's last status")
    finally:
        stop.set()
        projector.join(10)
    assert not projector.is_alive()
    assert seen == [s.message for s in statuses], "the projector missed a runtime change"
    assert says(final, statuses[-1])
    assert reporter.stats().requests == {"get": 1, "apply": len(statuses)}
    assert set(status_fields_owned_by(final, FIELD_MANAGER)) == {"f:runtime"}
    projector_owns = status_fields_owned_by(final, OPERATOR)
    assert "f:runtime" not in projector_owns
    assert {"f:phase", "f:message", "f:conditions"} <= set(projector_owns)


@pytest.fixture
def operator_writer(control_plane: ControlPlane, namespace: str) -> Iterator[Callable[[], list[int]]]:
    """Start a writer doing GET+PUT of the whole status every 100 ms; yields its successful sequence numbers."""
    api = control_plane.admin_api_client()
    stop = threading.Event()
    done: list[int] = []
    conflicts = [0]

    def write() -> None:
        seq = 0
        while not stop.wait(0.1):
            obj = get_vmcp(api, namespace)
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
                put_status(api, obj, status, OPERATOR)
            except client.ApiException as error:
                if error.status != 409:
                    raise
                conflicts[0] += 1
                continue
            done.append(seq)

    thread = threading.Thread(target=write, name="operator-writer")
    thread.start()
    try:
        yield lambda: done
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


@pytest.mark.parametrize("layout", [StatusLayout.RUNTIME, StatusLayout.LEGACY])
def test_next_to_an_operator_writing_every_100ms_each_runtime_write_is_one_request(
    admin_api: client.ApiClient,
    runtime_api: client.ApiClient,
    namespace: str,
    operator_writer: Callable[[], list[int]],
    actor_reporters: Callable[..., ActorReporter],
    layout: StatusLayout,
) -> None:
    vmcp = create_vmcp(admin_api, namespace)
    wait_for(lambda: len(operator_writer()) >= 3 or None, "the other writer to get going")
    applies_before = apiserver_requests(admin_api, "APPLY")
    sink = K8sReporter("vmcp", namespace, runtime_api, layout=layout)
    reporter = actor_reporters(sink)
    statuses: list[Status] = []
    with Watcher(admin_api, namespace, vmcp["metadata"]["resourceVersion"]) as watcher:
        started = time.monotonic()
        index = 0
        while time.monotonic() - started < CHANGING_FOR_S:
            index += 1
            # Backends flap: Ready flips every third status, Degraded comes and goes.
            flapping = index % 3 == 0
            status = runtime_status(
                index,
                ready=ConditionStatus.FALSE if flapping else ConditionStatus.TRUE,
                phase=Phase.DEGRADED if flapping else Phase.READY,
                degraded=index % 2 == 0,
            )
            statuses.append(status)
            reporter.report_status(status)
            time.sleep(0.05)  # pacing the producer, not synchronisation: nothing waits on it
        last_change = time.monotonic()
        wait_for(lambda: says(get_vmcp(admin_api, namespace), statuses[-1], layout) or None, "the last status")
        writer_at_convergence = len(operator_writer())
        wait_for(lambda: len(operator_writer()) >= writer_at_convergence + 5 or None, "more writes by the operator")
    reporter.wait_idle()

    stats = sink.stats()
    assert stats.conflicts == 0
    assert stats.requests.get("get") == 1, "one read at start"
    assert set(stats.requests) == {"get", "apply"}
    requests_per_change = stats.requests["apply"] / stats.writes
    assert requests_per_change == 1.0, stats
    assert apiserver_requests(admin_api, "APPLY") - applies_before == stats.requests["apply"], "the API server agrees"
    assert stats.writes >= 10, "the runtime wrote while the operator wrote"

    # Converged within 1 s of the last change: the first version that says the last status.
    arrived = next(at for at, obj in watcher.events if says(obj, statuses[-1], layout))
    assert arrived - last_change <= 1.0, f"converged {arrived - last_change:.2f} s after the last change"

    # Nothing of the other writer's was lost, in any version the object went through.
    writes = operator_writer()
    final = get_vmcp(admin_api, namespace)
    assert final["status"]["url"] == f"http://vmcp-{writes[-1]}.example"
    last_seq = 0
    seen_writer = False
    for _, obj in watcher.events:
        stored = obj.get("status") or {}
        if "url" in stored:
            seen_writer = True
            seq = int(stored["url"].removeprefix("http://vmcp-").removesuffix(".example"))
            operator_condition = next(c for c in stored["conditions"] if c["type"] == "GroupRefValidated")
            assert int(operator_condition["message"]) == seq
            assert seq >= last_seq, "the other writer's url went backwards"
            last_seq = seq
        else:
            assert not seen_writer, f"the other writer's url was erased at rv {obj['metadata']['resourceVersion']}"
    assert set(status_fields_owned_by(final, OPERATOR)) >= {"f:url"}
    ours = set(status_fields_owned_by(final, FIELD_MANAGER))
    assert "f:url" not in ours
    assert ours == ({"f:runtime"} if layout is StatusLayout.RUNTIME else ours - {"f:runtime"})
