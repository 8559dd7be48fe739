"""The runtime's ServiceAccount, as ``kubectl apply -k deploy/`` sets it up, can do exactly its job.

Asked the way an operator would ask (``kubectl auth can-i`` with the ServiceAccount's own token),
then checked by doing: the Lease is used the way the Role's comment promises (get, create,
update, and a watch of that one Lease by name, with no ``list``), and Events go through
``events.k8s.io`` only. A rule added to ``deploy/rbac/role.yaml`` without a reason shows up in
:func:`test_nothing_beyond_the_role_is_granted`.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testkit.cli_tools import (
    PROVISIONING_TIMEOUT_S,
    Kubectl,
    admin_kubectl,
    kubectl_binary,
    service_account_kubectl,
)
from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.project import DEPLOY_DIR, create_vmcp

# kubectl may have to be built inside a fixture (see cli_tools.PROVISIONING_TIMEOUT_S).
pytestmark = pytest.mark.timeout(PROVISIONING_TIMEOUT_S)

RUNTIME_SA = "vmcp-actors"
VMCP = "virtualmcpservers.toolhive.stacklok.dev"
LEASES = "leases.coordination.k8s.io"
EVENTS = "events.events.k8s.io"

#: (verb, resource, subresource): everything the runtime does, and so must be allowed.
ALLOWED = [
    ("get", VMCP, None),
    ("get", VMCP, "status"),
    ("update", VMCP, "status"),
    ("patch", VMCP, "status"),
    ("get", LEASES, None),
    ("create", LEASES, None),
    ("update", LEASES, None),
    ("watch", LEASES, None),
    ("create", EVENTS, None),
    ("patch", EVENTS, None),
]
#: Plausible mistakes of a too-generous Role; each must be denied.
DENIED = [
    ("list", "secrets", None),
    ("get", "secrets", None),
    ("list", VMCP, None),
    ("watch", VMCP, None),
    ("create", VMCP, None),
    ("update", VMCP, None),
    ("patch", VMCP, None),
    ("delete", VMCP, None),
    ("list", LEASES, None),
    ("patch", LEASES, None),
    ("delete", LEASES, None),
    ("deletecollection", LEASES, None),
    ("create", "events", None),  # the core/v1 Events API is not granted, only events.k8s.io
    ("list", EVENTS, None),
    ("delete", EVENTS, None),
    ("get", "pods", None),
    ("create", "pods", None),
    ("get", "configmaps", None),
    ("create", "serviceaccounts", "token"),
    ("create", "rolebindings.rbac.authorization.k8s.io", None),
]
#: The Role's rules as (apiGroup, resource, verb), the shape a SelfSubjectRulesReview reports.
ROLE_GRANTS = {
    ("toolhive.stacklok.dev", "virtualmcpservers", "get"),
    *(("toolhive.stacklok.dev", "virtualmcpservers/status", verb) for verb in ("get", "update", "patch")),
    *(("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update", "watch")),
    *(("events.k8s.io", "events", verb) for verb in ("create", "patch")),
}


def describe(verb: str, resource: str, subresource: str | None) -> str:
    return f"{verb} {resource}" + (f"/{subresource}" if subresource else "")


@pytest.fixture
def deployed(control_plane: ControlPlane, namespace: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Apply the default kustomization into ``namespace`` with the real kubectl; return kubectl."""
    kubectl_path = kubectl_binary(request.config)
    admin_kubectl(control_plane, kubectl_path, tmp_path / "admin").run(
        "apply", "-k", str(DEPLOY_DIR), f"--namespace={namespace}"
    )
    return kubectl_path


@pytest.fixture
def runtime(control_plane: ControlPlane, namespace: str, deployed: Path, tmp_path: Path) -> Kubectl:
    """kubectl as the runtime's ServiceAccount, with a token from the TokenRequest API."""
    return service_account_kubectl(control_plane, deployed, tmp_path / "runtime", namespace, RUNTIME_SA)


def test_runtime_can_do_what_it_needs(runtime: Kubectl, namespace: str) -> None:
    refused = [
        describe(*check) for check in ALLOWED if not runtime.can_i(check[0], check[1], namespace, subresource=check[2])
    ]
    assert refused == [], f"the runtime's ServiceAccount may not: {refused}"


def test_runtime_cannot_do_more(runtime: Kubectl, namespace: str) -> None:
    granted = [
        describe(*check) for check in DENIED if runtime.can_i(check[0], check[1], namespace, subresource=check[2])
    ]
    assert granted == [], f"the runtime's ServiceAccount may also: {granted}"


def test_runtime_has_nothing_in_another_namespace(
    control_plane: ControlPlane, admin_api: client.ApiClient, runtime: Kubectl, namespace: str
) -> None:
    other = f"{namespace[:50]}-other"
    client.CoreV1Api(admin_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        granted = [
            describe(*check) for check in ALLOWED if runtime.can_i(check[0], check[1], other, subresource=check[2])
        ]
        assert granted == [], f"the runtime's ServiceAccount reaches into {other}: {granted}"
    finally:
        client.CoreV1Api(admin_api).delete_namespace(other)


def resource_grants(api: client.ApiClient, namespace: str) -> set[tuple[str, str, str]]:
    """What a SelfSubjectRulesReview says ``api``'s user may do in ``namespace``, flattened."""
    review = raw_request(
        api,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}},
    ).json()
    assert review["status"]["incomplete"] is False
    grants: set[tuple[str, str, str]] = set()
    for rule in review["status"]["resourceRules"]:
        assert not rule.get("resourceNames"), f"unexpected resourceNames in {rule}"
        grants |= {
            (group, resource, verb)
            for group in rule.get("apiGroups", [])
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
    return grants


def test_nothing_beyond_the_role_is_granted(control_plane: ControlPlane, namespace: str, deployed: Path) -> None:
    """Compared with a ServiceAccount without bindings in the same namespace, the runtime gains
    exactly the Role's rules: the cluster's defaults (discovery, self reviews) are common to both."""
    control_plane.apply_object(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "outsider"}}, namespace=namespace
    )
    runtime_grants = resource_grants(control_plane.service_account_api_client(namespace, RUNTIME_SA), namespace)
    baseline = resource_grants(control_plane.service_account_api_client(namespace, "outsider"), namespace)
    assert runtime_grants - baseline == ROLE_GRANTS


def lease(name: str, holder: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": now, "renewTime": now},
    }


def test_leader_election_on_one_lease_works_without_list(
    control_plane: ControlPlane, namespace: str, deployed: Path
) -> None:
    api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    created = raw_request(api, "POST", leases, lease("vmcp-leader", "pod-a")).json()
    current = raw_request(api, "GET", f"{leases}/vmcp-leader").json()
    assert current["spec"]["holderIdentity"] == "pod-a"
    taken_over = lease("vmcp-leader", "pod-b")
    taken_over["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    updated = raw_request(api, "PUT", f"{leases}/vmcp-leader", taken_over).json()
    assert updated["spec"]["holderIdentity"] == "pod-b"

    # The watch a follower keeps on the one Lease: by name, from the version it read. The server
    # ends it after timeoutSeconds, so reading the whole response terminates.
    watched = raw_request(
        api,
        "GET",
        f"{leases}?watch=true&fieldSelector=metadata.name%3Dvmcp-leader"
        f"&resourceVersion={current['metadata']['resourceVersion']}&timeoutSeconds=1",
    )
    assert watched.status == 200
    assert b'"holderIdentity":"pod-b"' in watched.data

    with pytest.raises(client.ApiException) as caught:
        raw_request(api, "GET", leases)
    assert caught.value.status == 403
    with pytest.raises(client.ApiException) as caught:
        raw_request(api, "DELETE", f"{leases}/vmcp-leader")
    assert caught.value.status == 403


def test_events_go_through_events_k8s_io_only(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str, deployed: Path
) -> None:
    vmcp = create_vmcp(admin_api, namespace)
    api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "vmcp.backend-unreachable"},
        "eventTime": now,
        "reportingController": "vmcp-actors.stacklok.dev/runtime",
        "reportingInstance": "vmcp-actors-pod-a",
        "action": "HealthCheck",
        "reason": "BackendUnreachable",
        "type": "Warning",
        "note": "backend github is unreachable",
        "regarding": {
            "apiVersion": vmcp["apiVersion"],
            "kind": vmcp["kind"],
            "name": vmcp["metadata"]["name"],
            "namespace": namespace,
            "uid": vmcp["metadata"]["uid"],
        },
    }
    events = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    raw_request(api, "POST", events, event)
    patched = raw_request(
        api,
        "PATCH",
        f"{events}/vmcp.backend-unreachable",
        {"series": {"count": 2, "lastObservedTime": now}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert patched["series"]["count"] == 2

    core_event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "vmcp.core"},
        "involvedObject": event["regarding"],
        "reason": "BackendUnreachable",
        "message": "backend github is unreachable",
        "type": "Warning",
    }
    with pytest.raises(client.ApiException) as caught:
        raw_request(api, "POST", f"/api/v1/namespaces/{namespace}/events", core_event)
    assert caught.value.status == 403
