"""The control-plane fixture against a real kube-apiserver: the CRD, status writes, RBAC.

These tests pin the API-server semantics the runtime's Kubernetes status reporter relies on, so a
change to ``deploy/`` or to the fixture that weakens them fails here first.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import urllib3
from kubernetes import client, config

from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.manifests import iter_manifests
from testkit.project import CRD_NAME, DEPLOY_DIR, create_vmcp, get_vmcp, vmcp_manifest

GROUP = "toolhive.stacklok.dev"
VERSION = "v1beta1"
PLURAL = "virtualmcpservers"
RUNTIME_SA = "vmcp-actors"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


def now_rfc3339() -> str:
    """Current time in the second-precision RFC 3339 form metav1.Time serialises to."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_status(generation: int) -> dict[str, Any]:
    """A status as the runtime reports it with two healthy backends."""
    now = now_rfc3339()
    backend = {
        "url": "http://backend:8080/mcp",
        "status": "ready",
        "authType": "unauthenticated",
        "lastHealthCheck": now,
        "circuitBreakerState": "closed",
        "consecutiveFailures": 0,
    }
    return {
        "phase": "Ready",
        "message": "All 2 backends are ready",
        "observedGeneration": generation,
        "backendCount": 2,
        "discoveredBackends": [{"name": "alpha", **backend}, {"name": "beta", **backend}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllBackendsReady",
                "message": "All 2 backends are ready",
                "lastTransitionTime": now,
                "observedGeneration": generation,
            }
        ],
    }


def new_client_from_config(path: Path) -> client.ApiClient:
    """Load a kubeconfig the way users of the ``kubernetes`` package do (untyped in 37.x)."""
    api: client.ApiClient = config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]
    return api


def custom_objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def put_status(api: client.ApiClient, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """PUT /status with ``obj``'s resourceVersion (optimistic concurrency)."""
    body = {**obj, "status": status}
    metadata = obj["metadata"]
    replaced = custom_objects(api).replace_namespaced_custom_object_status(
        GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], body
    )
    return cast(dict[str, Any], replaced)


def apply_runtime_rbac(plane: ControlPlane, namespace: str) -> None:
    for manifest in iter_manifests(DEPLOY_DIR / "rbac"):
        plane.apply_manifest(manifest, namespace=namespace)


def test_crd_is_established_with_upstream_names(control_plane: ControlPlane, admin_api: client.ApiClient) -> None:
    crd = client.ApiextensionsV1Api(admin_api).read_custom_resource_definition(CRD_NAME)
    assert crd.status is not None
    assert crd.status.conditions is not None
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd.spec.names.short_names == ["vmcp", "virtualmcp"]
    assert crd.spec.names.categories == ["toolhive"]
    assert crd.spec.scope == "Namespaced"
    assert sorted((v.name, v.served, v.storage) for v in crd.spec.versions) == [
        ("v1alpha1", True, False),
        ("v1beta1", True, True),
    ]
    discovery = raw_request(admin_api, "GET", f"/apis/{GROUP}/{VERSION}").json()
    resources = {r["name"] for r in discovery["resources"]}
    assert {PLURAL, f"{PLURAL}/status"} <= resources


def test_status_is_a_separate_subresource(admin_api: client.ApiClient, namespace: str) -> None:
    obj = create_vmcp(admin_api, namespace)
    with_status = vmcp_manifest("with-status") | {"status": ready_status(1)}
    created = custom_objects(admin_api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, with_status)
    assert "status" not in cast(dict[str, Any], created), "status must be dropped on create"

    status = ready_status(obj["metadata"]["generation"])
    spec_change = obj | {"spec": {**obj["spec"], "groupRef": {"name": "other"}}}
    updated = put_status(admin_api, spec_change, status)
    assert updated["spec"]["groupRef"]["name"] == "backends", "/status must ignore spec"
    assert updated["metadata"]["generation"] == obj["metadata"]["generation"]

    read_back = cast(
        dict[str, Any],
        custom_objects(admin_api).get_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "vmcp"),
    )
    assert read_back["status"] == status


def test_table_output_shows_printer_columns(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    put_status(admin_api, create_vmcp(admin_api, namespace), ready_status(1))

    response = raw_request(
        admin_api, "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", headers={"Accept": TABLE_ACCEPT}
    )
    table = response.json()
    assert table["kind"] == "Table"
    columns = [column["name"] for column in table["columnDefinitions"]]
    assert columns == ["Name", "Phase", "URL", "Backends", "Age", "Ready"]
    (row,) = table["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert cells["Name"] == "vmcp"
    assert cells["Phase"] == "Ready"
    assert cells["Backends"] == 2
    assert cells["Ready"] == "True"


def _duplicate_backends(status: dict[str, Any]) -> None:
    status["discoveredBackends"][1]["name"] = status["discoveredBackends"][0]["name"]


def _bad_reason(status: dict[str, Any]) -> None:
    status["conditions"][0]["reason"] = "not a valid reason!"


def _duplicate_condition_types(status: dict[str, Any]) -> None:
    status["conditions"].append(dict(status["conditions"][0]))


def _unknown_phase(status: dict[str, Any]) -> None:
    status["phase"] = "Running"


def _unknown_circuit_state(status: dict[str, Any]) -> None:
    status["discoveredBackends"][0]["circuitBreakerState"] = "tripped"


def _negative_condition_generation(status: dict[str, Any]) -> None:
    status["conditions"][0]["observedGeneration"] = -1


def _condition_without_message(status: dict[str, Any]) -> None:
    del status["conditions"][0]["message"]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_duplicate_backends, "Duplicate value"),
        (_bad_reason, "status.conditions[0].reason"),
        (_duplicate_condition_types, "Duplicate value"),
        (_unknown_phase, "status.phase"),
        (_unknown_circuit_state, "circuitBreakerState"),
        (_negative_condition_generation, "observedGeneration"),
        (_condition_without_message, "status.conditions[0].message"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).strip("_"),
)
def test_schema_violations_are_rejected_with_422(
    admin_api: client.ApiClient, namespace: str, breakage: Any, expected: str
) -> None:
    obj = create_vmcp(admin_api, namespace)
    status = ready_status(1)
    breakage(status)
    with pytest.raises(client.ApiException) as caught:
        put_status(admin_api, obj, status)
    assert caught.value.status == 422
    assert expected in str(caught.value.body)


def test_stale_resource_version_gets_409(admin_api: client.ApiClient, namespace: str) -> None:
    stale = create_vmcp(admin_api, namespace)
    put_status(admin_api, stale, ready_status(1))
    with pytest.raises(client.ApiException) as caught:
        put_status(admin_api, stale, ready_status(1) | {"phase": "Degraded"})
    assert caught.value.status == 409
    assert get_vmcp(admin_api, namespace)["status"]["phase"] == "Ready"


def test_runtime_rbac_allows_status_writes_only(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    apply_runtime_rbac(control_plane, namespace)
    control_plane.apply_object(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "outsider"}}, namespace=namespace
    )
    create_vmcp(admin_api, namespace)

    runtime = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    obj = get_vmcp(runtime, namespace)
    updated = put_status(runtime, obj, ready_status(obj["metadata"]["generation"]))
    assert updated["status"]["phase"] == "Ready"
    patched = custom_objects(runtime).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "vmcp", {"status": {"message": "patched"}}
    )
    assert cast(dict[str, Any], patched)["status"]["message"] == "patched"
    custom_objects(runtime).get_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "vmcp")

    forbidden_for_runtime: list[Callable[[], object]] = [
        lambda: custom_objects(runtime).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL),
        lambda: custom_objects(runtime).replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "vmcp", get_vmcp(admin_api, namespace)
        ),
        lambda: custom_objects(runtime).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vmcp"),
        lambda: custom_objects(runtime).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, vmcp_manifest("another")
        ),
    ]
    for call in forbidden_for_runtime:
        with pytest.raises(client.ApiException) as caught:
            call()
        assert caught.value.status == 403

    outsider = control_plane.service_account_api_client(namespace, "outsider")
    with pytest.raises(client.ApiException) as caught:
        put_status(outsider, get_vmcp(admin_api, namespace), ready_status(1))
    assert caught.value.status == 403
    with pytest.raises(client.ApiException) as caught:
        get_vmcp(outsider, namespace)
    assert caught.value.status == 403


def test_runtime_rbac_is_confined_to_its_namespace(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    apply_runtime_rbac(control_plane, namespace)
    other = f"{namespace[:50]}-other"
    client.CoreV1Api(admin_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        obj = create_vmcp(admin_api, other)
        runtime = control_plane.service_account_api_client(namespace, RUNTIME_SA)
        with pytest.raises(client.ApiException) as caught:
            put_status(runtime, obj, ready_status(1))
        assert caught.value.status == 403
    finally:
        client.CoreV1Api(admin_api).delete_namespace(other)


def test_v1alpha1_is_served_with_a_deprecation_warning(admin_api: client.ApiClient, namespace: str) -> None:
    create_vmcp(admin_api, namespace)
    response = raw_request(admin_api, "GET", f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/{PLURAL}/vmcp")
    assert response.json()["apiVersion"] == f"{GROUP}/v1alpha1"
    assert "toolhive.stacklok.dev/v1alpha1 is deprecated; use v1beta1" in response.headers.get("warning", "")


def test_kubeconfigs_work_for_admin_and_service_account(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    apply_runtime_rbac(control_plane, namespace)
    create_vmcp(admin_api, namespace)

    admin_config = control_plane.write_kubeconfig(tmp_path / "admin.kubeconfig")
    with new_client_from_config(admin_config) as from_admin_config:
        read = client.CoreV1Api(from_admin_config).read_namespace(namespace)
        assert read.metadata is not None
        assert read.metadata.name == namespace

    token = control_plane.service_account_token(namespace, RUNTIME_SA)
    sa_config = control_plane.write_kubeconfig(tmp_path / "sa.kubeconfig", token=token, namespace=namespace)
    with new_client_from_config(sa_config) as from_sa_config:
        assert get_vmcp(from_sa_config, namespace)["metadata"]["name"] == "vmcp"
        with pytest.raises(client.ApiException) as caught:
            client.CoreV1Api(from_sa_config).read_namespace(namespace)
        assert caught.value.status == 403


def test_api_server_restart_keeps_port_and_data(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    port = control_plane.port
    put_status(admin_api, create_vmcp(admin_api, namespace), ready_status(1))
    control_plane.stop_apiserver(graceful=False)
    try:
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            get_vmcp(admin_api, namespace)
    finally:
        control_plane.start_apiserver()
    assert control_plane.port == port
    assert get_vmcp(admin_api, namespace)["status"]["phase"] == "Ready"
    control_plane.restart_apiserver()
    assert get_vmcp(admin_api, namespace)["status"]["backendCount"] == 2
