"""Which fields the runtime writes is decided by what the API server does with them, never by reading the CRD.

* toolhive's pre-v0.47 CRD (a control plane of its own: the CRD's name is cluster-wide) has no
  ``status.runtime``: the API server rejects an apply naming it ("field not declared in
  schema"), so the runtime writes the legacy top-level fields, as before, beside the
  operator's; the update fallback sees the field pruned and does the same.
* ``VMCP_STATUS_LAYOUT`` overrides the decision: ``legacy`` on the v0.63.0 CRD writes the
  top-level fields; ``runtime`` on the old CRD is an error that says what to change.
* An API server that rejects server-side apply (HTTP 415; here a proxy in front of the real
  one) gets the update path, and a warning says so.
"""

from __future__ import annotations

import http.client
import http.server
import logging
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from testkit.cli_tools import TOOLHIVE_CRD_PRE_V0_47
from testkit.control_plane import ControlPlane
from testkit.crds import install_crd
from testkit.kube_rest import raw_request
from testkit.manifests import iter_manifests
from testkit.project import DEPLOY_DIR, create_vmcp, get_vmcp
from tests.reporting.kube_support import (
    FIELD_MANAGER,
    RUNTIME_SA,
    put_status,
    runtime_rbac,
    runtime_status,
    says,
    status_fields_owned_by,
)
from vmcp_actors.errors import KubernetesError
from vmcp_actors.model.status import ConditionStatus, Phase
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, StatusLayout
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

__all__ = ["runtime_rbac"]  # fixture used by the tests below

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
OPERATOR_CONDITION = {
    "type": "GroupRefValidated",
    "status": "True",
    "reason": "GroupRefIsValid",
    "message": "owned by the operator",
    "lastTransitionTime": "2025-01-01T00:00:00Z",
}


@pytest.fixture(scope="module")
def legacy_plane(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of its own with toolhive's pre-v0.47 CRD (no ``status.runtime``).

    Depends on the session ``control_plane`` only for its binaries.
    """
    plane = ControlPlane(control_plane.binaries_dir, workdir=tmp_path_factory.mktemp("legacy-plane"))
    plane.start()
    try:
        install_crd(plane, TOOLHIVE_CRD_PRE_V0_47)
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def legacy(legacy_plane: ControlPlane) -> tuple[ControlPlane, str, client.ApiClient]:
    """A namespace on the legacy plane with deploy/rbac and a VirtualMCPServer; the runtime's client."""
    namespace = f"legacy-{uuid.uuid4().hex[:8]}"
    admin = legacy_plane.admin_api_client()
    client.CoreV1Api(admin).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    for manifest in iter_manifests(DEPLOY_DIR / "rbac"):
        legacy_plane.apply_manifest(manifest, namespace=namespace)
    create_vmcp(admin, namespace)
    return legacy_plane, namespace, legacy_plane.service_account_api_client(namespace, RUNTIME_SA)


def printer_columns(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """What ``kubectl get virtualmcpservers`` shows for the one object in ``namespace``."""
    table = raw_request(
        api, "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", headers={"Accept": TABLE_ACCEPT}
    ).json()
    columns = [column["name"] for column in table["columnDefinitions"]]
    (row,) = table["rows"]
    return dict(zip(columns, row["cells"], strict=True))


def test_on_the_pre_v047_crd_the_runtime_writes_the_legacy_top_level_fields(
    legacy: tuple[ControlPlane, str, client.ApiClient], caplog: pytest.LogCaptureFixture
) -> None:
    plane, namespace, runtime_api = legacy
    admin = plane.admin_api_client()
    obj = get_vmcp(admin, namespace)
    put_status(admin, obj, {"url": "http://vmcp.example:4483", "conditions": [OPERATOR_CONDITION]}, "operator")

    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0)
    with caplog.at_level(logging.INFO, logger="vmcp_actors.reporting.kubernetes.reporter"):
        reporter.report_status(runtime_status(1, degraded=True))
    assert "the CRD has no status.runtime" in caplog.text
    assert "not declared in schema" in caplog.text, "decided by the API server's answer"
    stats = reporter.stats()
    assert stats.requests == {"get": 1, "apply": 2}, "one read, the rejected runtime apply, the legacy apply"
    assert stats.layout == "legacy"

    obj = get_vmcp(admin, namespace)
    status = obj["status"]
    assert "runtime" not in status
    assert says(obj, runtime_status(1, degraded=True), StatusLayout.LEGACY)
    assert status["url"] == "http://vmcp.example:4483", "the operator's field survives"
    assert [c["type"] for c in status["conditions"]] == ["GroupRefValidated", "Ready", "BackendsDiscovered", "Degraded"]
    assert status["conditions"][0] == OPERATOR_CONDITION
    owned = status_fields_owned_by(obj, FIELD_MANAGER)
    assert {"f:phase", "f:message", "f:backendCount", "f:discoveredBackends", "f:conditions"} == set(owned)
    assert set(owned["f:conditions"]) == {
        'k:{"type":"Ready"}',
        'k:{"type":"BackendsDiscovered"}',
        'k:{"type":"Degraded"}',
    }
    assert "f:url" in status_fields_owned_by(obj, "operator")
    cells = printer_columns(admin, namespace)
    assert (cells["Phase"], cells["Backends"], cells["Ready"]) == ("Ready", 2, "True")

    # From now on: one apply per status; a runtime condition left out is removed, the operator's is not.
    reporter.report_status(runtime_status(2, ready=ConditionStatus.FALSE, phase=Phase.FAILED, backends=0))
    assert reporter.stats().requests == {"get": 1, "apply": 3}
    obj = get_vmcp(admin, namespace)
    assert [c["type"] for c in obj["status"]["conditions"]] == ["GroupRefValidated", "Ready", "BackendsDiscovered"]
    assert "backendCount" not in obj["status"]
    cells = printer_columns(admin, namespace)
    assert (cells["Phase"], cells["Backends"], cells["Ready"]) == ("Failed", None, "False")


def test_the_update_path_on_the_pre_v047_crd_sees_status_runtime_pruned(
    legacy: tuple[ControlPlane, str, client.ApiClient],
) -> None:
    plane, namespace, runtime_api = legacy
    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0, method="update")
    reporter.report_status(runtime_status(1))
    assert reporter.stats().requests == {"get": 1, "update": 2}, "the pruned runtime PUT, then the legacy one"
    assert reporter.stats().layout == "legacy"
    obj = get_vmcp(plane.admin_api_client(), namespace)
    assert "runtime" not in obj["status"]
    assert says(obj, runtime_status(1), StatusLayout.LEGACY)


def test_insisting_on_status_runtime_where_the_crd_lacks_it_says_what_to_change(
    legacy: tuple[ControlPlane, str, client.ApiClient],
) -> None:
    _, namespace, runtime_api = legacy
    reporter = K8sReporter("vmcp", namespace, runtime_api, qps=0, layout="runtime")
    with pytest.raises(KubernetesError) as caught:
        reporter.report_status(runtime_status(1))
    message = str(caught.value)
    assert "the installed CRD has no status.runtime" in message
    assert "VMCP_STATUS_LAYOUT=legacy" in message


def test_vmcp_status_layout_legacy_writes_the_top_level_fields_on_the_current_crd(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str, runtime_rbac: None, tmp_path: Path
) -> None:
    create_vmcp(admin_api, namespace)
    token = control_plane.service_account_token(namespace, RUNTIME_SA)
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "kubeconfig", token=token)
    env = {
        "VMCP_NAME": "vmcp",
        "VMCP_NAMESPACE": namespace,
        "KUBECONFIG": str(kubeconfig),
        "VMCP_STATUS_LAYOUT": "legacy",
        "VMCP_OBSERVED_GENERATION": "1",
    }
    reporter = new_reporter(env)
    assert isinstance(reporter, K8sReporter)
    shutdown = reporter.start()
    try:
        reporter.report_status(runtime_status(1))
        assert reporter.stats().requests == {"get": 1, "apply": 1}
    finally:
        shutdown(5.0)
    obj = get_vmcp(admin_api, namespace)
    assert "runtime" not in obj["status"]
    assert obj["status"]["message"] == "status #1"
    assert obj["status"]["observedGeneration"] == 1
    assert "f:runtime" not in status_fields_owned_by(obj, FIELD_MANAGER)


# --------------------------------------------------------------------------- apply rejected


class _RejectApply(http.server.BaseHTTPRequestHandler):
    """Forwards every request to the real API server, except server-side apply, which gets 415."""

    upstream: ClassVar[str] = ""
    context: ClassVar[ssl.SSLContext]
    rejected: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the counters, not the log."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.headers.get("Content-Type", "").startswith("application/apply-patch"):
            type(self).rejected.append(self.path)
            message = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"UnsupportedMediaType",'
            message += b'"message":"the body of the request was in an unknown format","code":415}'
            self.send_response(415)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return
        upstream = urlsplit(type(self).upstream)
        connection = http.client.HTTPSConnection(upstream.hostname or "", upstream.port, context=type(self).context)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_POST = _forward


@pytest.fixture
def apply_rejecting_proxy(control_plane: ControlPlane) -> Iterator[str]:
    """A plain-HTTP proxy to the API server that answers every server-side apply with HTTP 415."""
    _RejectApply.upstream = control_plane.url
    _RejectApply.context = ssl.create_default_context(cafile=str(control_plane.ca_file))
    _RejectApply.rejected = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RejectApply)
    thread = threading.Thread(target=server.serve_forever, name="reject-apply-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_api_server_that_rejects_apply_gets_updates_and_a_warning(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    namespace: str,
    runtime_rbac: None,
    apply_rejecting_proxy: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    create_vmcp(admin_api, namespace)
    configuration = client.Configuration(host=apply_rejecting_proxy)
    configuration.api_key = {"BearerToken": control_plane.service_account_token(namespace, RUNTIME_SA)}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.ApiClient(configuration)
    try:
        reporter = K8sReporter("vmcp", namespace, api, qps=0)
        with caplog.at_level(logging.WARNING, logger="vmcp_actors.reporting.kubernetes.reporter"):
            reporter.report_status(runtime_status(1))
            reporter.report_status(runtime_status(2))
    finally:
        api.close()  # type: ignore[no-untyped-call]
    (warning,) = [r.getMessage() for r in caplog.records if "rejected server-side apply" in r.getMessage()]
    assert "HTTP 415" in warning
    assert "GET+PUT updates from now on" in warning
    assert len(_RejectApply.rejected) == 1, "apply is tried once, then never again"
    stats = reporter.stats()
    assert stats.method == "update"
    assert stats.requests == {"get": 1, "apply": 1, "update": 2}
    assert says(get_vmcp(admin_api, namespace), runtime_status(2))
