"""Installing toolhive's VirtualMCPServer CRD the way ``kubectl apply --server-side`` does.

The tests run against toolhive's real CRDs: the current v0.63.0 one (``deploy/standalone/``,
with ``status.runtime``) by default, and the pre-v0.47 one (no ``status.runtime``) where the
legacy layout is under test. Both are ~700 kB, too big for client-side apply's
last-applied annotation, so they are installed with one server-side apply PATCH by the admin
client, exactly what ``kubectl apply --server-side`` sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.project import CRD_NAME

__all__ = ["FIELD_MANAGER", "install_crd"]

#: The field manager the harness installs CRDs as.
FIELD_MANAGER: Final = "vmcp-actors-tests"
_CRDS: Final = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crd(plane: ControlPlane, path: Path, *, timeout: float = 60.0) -> dict[str, Any]:
    """Server-side apply the CRD in ``path`` (force, as the only manager) and wait until it is Established."""
    (crd,) = [doc for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if doc]
    name = crd["metadata"]["name"]
    if name != CRD_NAME:
        raise ValueError(f"{path} holds CRD {name}, not {CRD_NAME}")
    raw_request(
        plane.admin_api_client(),
        "PATCH",
        f"{_CRDS}/{name}?fieldManager={FIELD_MANAGER}&force=true",
        crd,
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    return plane.wait_crd_established(name, timeout=timeout)
