"""What the harness installs from ``deploy/`` with ``ControlPlane.apply_manifest``, and only that.

``deploy/`` now also holds the example Deployment, its vMCP config, the Prometheus rules and
toolhive's CRD for standalone clusters; none of them is for ``apply_manifest``.
:func:`~testkit.cli_tools.harness_manifests` names the CRD and RBAC files it is for.
"""

from __future__ import annotations

from testkit.cli_tools import harness_manifests
from testkit.control_plane import ControlPlane
from testkit.project import CRD_NAME, DEPLOY_DIR


def test_harness_manifests_are_the_test_crd_and_the_rbac() -> None:
    assert [m.relative_to(DEPLOY_DIR).as_posix() for m in harness_manifests()] == [
        "crd/toolhive.stacklok.dev_virtualmcpservers.yaml",
        "rbac/role.yaml",
        "rbac/role_binding.yaml",
        "rbac/service_account.yaml",
    ]


def test_harness_manifests_apply_then_reapply_in_place(control_plane: ControlPlane, namespace: str) -> None:
    manifests = list(harness_manifests())
    created = [obj for m in manifests for obj in control_plane.apply_manifest(m, namespace=namespace)]
    updated = [obj for m in manifests for obj in control_plane.apply_manifest(m, namespace=namespace)]
    assert [o["metadata"]["uid"] for o in updated] == [o["metadata"]["uid"] for o in created]
    assert {o["metadata"].get("namespace") for o in updated} == {None, namespace}
    control_plane.wait_crd_established(CRD_NAME)
