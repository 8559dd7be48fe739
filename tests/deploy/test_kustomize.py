"""``deploy/`` applied with the real kubectl to a real kube-apiserver, as an operator would.

The default kustomization must never touch the VirtualMCPServer CRD: toolhive owns it, and a copy
applied from here would overwrite toolhive's schema. These tests install toolhive's real CRD
first (the current v0.63.0 and the pre-v0.47 one without ``status.runtime``), apply ``deploy/`` and
check the CRD is exactly as installed. Each runs on a control plane of its own, because the
session's plane already carries toolhive's v0.63.0 CRD, installed by the harness.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from testkit.cli_tools import (
    PROVISIONING_TIMEOUT_S,
    RUNTIME_CONFIG,
    TOOLHIVE_CRD_PRE_V0_47,
    TOOLHIVE_CRD_V0_63_0,
    Kubectl,
    admin_kubectl,
    changed_parts,
    crd_untouched_view,
    kubectl_binary,
    load_documents,
    run_checked,
)
from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.project import CRD_NAME, DEPLOY_DIR

# kubectl may have to be built inside a fixture (see cli_tools.PROVISIONING_TIMEOUT_S).
pytestmark = pytest.mark.timeout(PROVISIONING_TIMEOUT_S)

NAMESPACE = "vmcp-system"
#: What ``kubectl apply -k deploy/`` creates, by kind and name (the ConfigMap's hash suffix aside).
EXPECTED_OBJECTS = {
    ("ServiceAccount", "vmcp-actors"),
    ("Role", "vmcp-actors"),
    ("RoleBinding", "vmcp-actors"),
    ("Deployment", "vmcp-actors"),
    ("ConfigMap", "vmcp-actors-config"),
}
PLACEHOLDER_IMAGE = "registry.example.com/vmcp-actors:set-me"


@pytest.fixture(scope="module")
def kubectl_path(request: pytest.FixtureRequest) -> Path:
    return kubectl_binary(request.config)


@pytest.fixture
def own_plane(control_plane: ControlPlane, tmp_path: Path) -> Iterator[ControlPlane]:
    """A started control plane with no CRD installed, stopped after the test.

    Depends on the session ``control_plane`` only for its binaries, which the harness provisions
    before any test's timeout starts.
    """
    plane = ControlPlane(control_plane.binaries_dir, workdir=tmp_path / "plane")
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def admin(own_plane: ControlPlane, kubectl_path: Path, tmp_path: Path) -> Kubectl:
    return admin_kubectl(own_plane, kubectl_path, tmp_path / "kubectl")


def kind_and_name(obj: dict[str, Any]) -> tuple[str, str]:
    name = str(obj["metadata"]["name"])
    if obj["kind"] == "ConfigMap":
        name = name.rsplit("-", 1)[0]  # drop the content hash configMapGenerator appends
    return str(obj["kind"]), name


def test_default_kustomization_holds_the_runtime_and_no_crd(kubectl_path: Path, tmp_path: Path) -> None:
    # `kubectl kustomize` renders locally; the kubeconfig is never read, so none needs to exist.
    offline = Kubectl(kubectl_path, tmp_path / "unused.kubeconfig", tmp_path)
    objects = load_documents(offline.run("kustomize", str(DEPLOY_DIR)).stdout)
    assert {kind_and_name(obj) for obj in objects} == EXPECTED_OBJECTS
    assert len(objects) == len(EXPECTED_OBJECTS)
    assert all(obj["kind"] != "CustomResourceDefinition" for obj in objects)


def test_standalone_kustomization_installs_toolhive_crd_unchanged(own_plane: ControlPlane, admin: Kubectl) -> None:
    admin.run("apply", "--server-side", "-k", str(DEPLOY_DIR / "standalone"))
    own_plane.wait_crd_established(CRD_NAME)

    (shipped,) = load_documents(TOOLHIVE_CRD_V0_63_0.read_text(encoding="utf-8"))
    stored = raw_request(
        own_plane.admin_api_client(), "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
    ).json()
    assert stored["spec"]["names"] == shipped["spec"]["names"]
    for stored_version, shipped_version in zip(stored["spec"]["versions"], shipped["spec"]["versions"], strict=True):
        assert stored_version == shipped_version, f"version {shipped_version['name']} was altered on the way in"
    assert stored["metadata"]["labels"] == shipped["metadata"]["labels"]
    assert stored["metadata"]["annotations"] == shipped["metadata"]["annotations"]


@pytest.mark.parametrize(
    "crd_file", [TOOLHIVE_CRD_V0_63_0, TOOLHIVE_CRD_PRE_V0_47], ids=["toolhive-v0.63.0", "toolhive-pre-v0.47"]
)
def test_default_kustomization_never_touches_the_installed_crd(
    own_plane: ControlPlane, admin: Kubectl, crd_file: Path
) -> None:
    # toolhive's Helm chart creates its CRDs; `kubectl create` does the same (no apply annotation).
    admin.run("create", "-f", str(crd_file))
    own_plane.wait_crd_established(CRD_NAME)
    api = own_plane.admin_api_client()
    installed = crd_untouched_view(api, CRD_NAME)
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

    first = admin.run("apply", "-k", str(DEPLOY_DIR), f"--namespace={NAMESPACE}").stdout
    assert changed_parts(installed, crd_untouched_view(api, CRD_NAME)) == []
    assert "customresourcedefinition" not in first
    assert len([line for line in first.splitlines() if line.endswith(" created")]) == len(EXPECTED_OBJECTS)

    again = admin.run("apply", "-k", str(DEPLOY_DIR), f"--namespace={NAMESPACE}").stdout
    assert [line for line in again.splitlines() if not line.endswith(" unchanged")] == []
    assert changed_parts(installed, crd_untouched_view(api, CRD_NAME)) == []


def test_example_deployment_as_stored(own_plane: ControlPlane, admin: Kubectl) -> None:
    api = own_plane.admin_api_client()
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    admin.run("apply", "-k", str(DEPLOY_DIR), f"--namespace={NAMESPACE}")

    deployment = cast(
        dict[str, Any], raw_request(api, "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/vmcp-actors").json()
    )
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert pod["serviceAccountName"] == "vmcp-actors"
    assert pod["terminationGracePeriodSeconds"] > 10 + 15, "must exceed serve's 10 s drain + the 15 s stop bound"
    assert container["image"] == PLACEHOLDER_IMAGE
    assert container["command"] == [
        "vmcp-actors",
        "serve",
        "--config",
        "/etc/vmcp/config.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        "4483",
        "--allowed-host",
        "$(POD_IP)",
    ]
    assert container["ports"] == [{"name": "mcp", "containerPort": 4483, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "mcp", "scheme": "HTTP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "mcp", "scheme": "HTTP"}
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container["env"]}
    assert env == {
        "VMCP_NAME": "metadata.labels['app.kubernetes.io/instance']",
        "VMCP_NAMESPACE": "metadata.namespace",
        "POD_NAME": "metadata.name",
        "POD_IP": "status.podIP",
    }
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "my-vmcp"
    assert spec["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "my-vmcp"

    # The volume names the generated ConfigMap (hash suffix included), which holds config.yaml.
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts["config"] == "/etc/vmcp"
    config_map_name = volumes["config"]["configMap"]["name"]
    assert config_map_name.startswith("vmcp-actors-config-")
    config_map = raw_request(api, "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{config_map_name}").json()
    assert config_map["data"] == {"config.yaml": RUNTIME_CONFIG.read_text(encoding="utf-8")}


def test_example_config_is_valid_for_the_runtime() -> None:
    """The ConfigMap's config must load, or every pod of the example Deployment crash-loops."""
    completed = run_checked([sys.executable, "-m", "vmcp_actors", "validate", str(RUNTIME_CONFIG)])
    assert "OK (1 backends: example)" in completed.stdout
