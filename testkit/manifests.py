"""Applying the project's YAML manifests (``deploy/``) to a test API server, as ``kubectl`` would.

Why: tests install the CRD, Roles and ServiceAccounts from the very files an operator applies,
so a broken manifest fails a test; create-or-replace of the few kinds ``deploy/`` holds is small
enough to do over REST without ``kubectl``, and it lives apart from starting the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from kubernetes import client

from testkit.kube_rest import request_json
from testkit.plane_process import ControlPlaneError


def iter_manifests(directory: Path) -> Iterator[Path]:
    """Yield the YAML manifests under ``directory`` in a stable order (CRDs first)."""
    files = sorted(Path(directory).rglob("*.yaml"))
    yield from (path for path in files if path.parent.name == "crd")
    yield from (path for path in files if path.parent.name != "crd" and path.name != "kustomization.yaml")


def create_or_replace(api: client.ApiClient, obj: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
    """Create ``obj`` through ``api``, or replace it if it exists; return it as the server stored it.

    Supports the kinds :class:`RestResource` knows; namespaced objects without
    ``metadata.namespace`` go into ``namespace``.
    """
    kind = obj.get("kind")
    body: dict[str, Any] = json.loads(json.dumps(obj))
    metadata: dict[str, Any] = body.setdefault("metadata", {})
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ControlPlaneError(f"{kind} without metadata.name")
    rest = RestResource.for_kind(str(kind), str(body.get("apiVersion", "")))
    if rest.namespaced:
        metadata.setdefault("namespace", namespace)
        if not metadata["namespace"]:
            raise ControlPlaneError(f"{kind} {name} needs a namespace")
    path = rest.path(metadata.get("namespace"))
    try:
        return request_json(api, "POST", path, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
    current = request_json(api, "GET", f"{path}/{name}")
    metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
    return request_json(api, "PUT", f"{path}/{name}", body)


class RestResource:
    """Where the REST API keeps one of the kinds :func:`create_or_replace` supports."""

    _KINDS: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
        "Namespace": ("/api/v1", "namespaces", False),
        "ServiceAccount": ("/api/v1", "serviceaccounts", True),
        "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
        "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
        "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
        "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    }

    def __init__(self, prefix: str, plural: str, namespaced: bool) -> None:
        self.prefix = prefix
        self.plural = plural
        self.namespaced = namespaced

    @classmethod
    def for_kind(cls, kind: str, api_version: str) -> RestResource:
        entry = cls._KINDS.get(kind)
        if entry is None:
            raise ControlPlaneError(f"apply_manifest does not support kind {kind!r}")
        prefix, plural, namespaced = entry
        expected = prefix.removeprefix("/apis/").removeprefix("/api/")
        if api_version != expected:
            raise ControlPlaneError(f"{kind} must have apiVersion {expected}, not {api_version!r}")
        return cls(prefix, plural, namespaced)

    def path(self, namespace: str | None) -> str:
        if self.namespaced:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"
