"""The real ``kubectl`` and ``promtool`` for tests, and where the deploy tests find their inputs.

Why real binaries: what an operator runs is ``kubectl apply -k deploy/`` (kustomize, discovery,
client-side validation) and ``kubectl auth can-i``; what Prometheus loads is checked only by
``promtool``. Python stand-ins would test the stand-ins. ``scripts/envtest.py`` builds both from
the Go module proxy and caches them (see its ``ensure_kubectl`` and ``ensure_promtool``).

Kept apart from ``conftest.py`` (tests import plain helpers, never a conftest) and from
``project.py`` (owned by the harness).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.kube_rest import raw_request
from testkit.manifests import iter_manifests
from testkit.project import DEPLOY_DIR, load_envtest

#: toolhive's current CRD, shipped for standalone clusters by the opt-in ``deploy/standalone/``.
TOOLHIVE_CRD_V0_63_0 = DEPLOY_DIR / "standalone" / "toolhive.stacklok.dev_virtualmcpservers.yaml"
#: toolhive's older CRD (toolhive at e25de16, before v0.47): no ``status.runtime`` subtree, the runtime
#: writes the top-level status itself. Copied unchanged from shared/reference/toolhive-crd/.
TOOLHIVE_CRD_PRE_V0_47 = (
    Path(__file__).resolve().parent / "data" / "toolhive-crd-pre-v0.47" / "toolhive.stacklok.dev_virtualmcpservers.yaml"
)
PROMETHEUS_RULES = DEPLOY_DIR / "prometheus" / "vmcp-alerts.yaml"
#: The vMCP config the example Deployment mounts.
RUNTIME_CONFIG = DEPLOY_DIR / "runtime" / "config.yaml"

#: Per-test budget when a binary may have to be built inside a fixture (a cold promtool build takes
#: minutes on two cores). The subprocess calls below carry their own, much shorter, timeouts, so a
#: hang is still caught quickly.
PROVISIONING_TIMEOUT_S = 3600
#: One kubectl or promtool invocation; generous for a loaded two-core machine.
COMMAND_TIMEOUT_S = 120.0


def provisioned(config: pytest.Config, what: str, ensure: Callable[[], Path]) -> Path:
    """Run an ``envtest.ensure_*`` function with output capture off; fail the test if it fails.

    Capture is suspended so a cold build's progress reaches the terminal, as the harness does
    for kube-apiserver. A missing binary is a failure, never a skip.
    """
    envtest = load_envtest()
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        try:
            return ensure()
        except envtest.EnvtestError as error:
            pytest.fail(f"{what} unavailable: {error}", pytrace=False)


def kubectl_binary(config: pytest.Config) -> Path:
    """The provisioned kubectl (``$KUBEBUILDER_ASSETS/kubectl`` or the cache's)."""
    return provisioned(config, "kubectl", load_envtest().ensure_kubectl)


def promtool_binary(config: pytest.Config) -> Path:
    """The provisioned promtool of the pinned Prometheus release."""
    return provisioned(config, "promtool", load_envtest().ensure_promtool)


class CommandFailed(AssertionError):
    """A kubectl or promtool run exited non-zero; the message carries its output."""


def run_checked(
    argv: Sequence[str], *, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with a timeout; with ``check``, raise :class:`CommandFailed` quoting its output."""
    completed = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=env, check=False
    )
    if check and completed.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited {completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return completed


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig, isolated from the user's ``~/.kube`` and ``kuberc``.

    ``home`` becomes ``$HOME`` and holds the discovery cache, so parallel runs and the developer's
    own kubectl never share state with a test.
    """

    binary: Path
    kubeconfig: Path
    home: Path

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "KUBERC")}
        return env | {"HOME": str(self.home), "KUBERC": "off"}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl <args>``; with ``check`` a non-zero exit fails with the output."""
        argv = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.home / 'cache'}",
            "--request-timeout=60s",
            *args,
        ]
        return run_checked(argv, env=self._env(), check=check)

    def can_i(self, verb: str, resource: str, namespace: str, *, subresource: str | None = None) -> bool:
        """``kubectl auth can-i``: ``True`` for yes (exit 0), ``False`` for no (exit 1).

        Any other exit status is an error, not a "no": a broken kubeconfig must not pass as a
        correctly denied permission.
        """
        args = ["auth", "can-i", verb, resource, f"--namespace={namespace}"]
        if subresource is not None:
            args.append(f"--subresource={subresource}")
        completed = self.run(*args, check=False)
        answer = completed.stdout.strip().splitlines()[-1:] if completed.stdout.strip() else []
        if completed.returncode == 0 and answer == ["yes"]:
            return True
        if completed.returncode == 1 and answer == ["no"]:
            return False
        raise CommandFailed(
            f"kubectl {' '.join(args)} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )


def admin_kubectl(plane: ControlPlane, binary: Path, directory: Path) -> Kubectl:
    """kubectl as the control plane's ``system:masters`` admin (client certificate)."""
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = plane.write_kubeconfig(directory / "admin.kubeconfig")
    return Kubectl(binary, kubeconfig, directory)


def service_account_kubectl(plane: ControlPlane, binary: Path, directory: Path, namespace: str, name: str) -> Kubectl:
    """kubectl as ServiceAccount ``namespace/name``, with a token from the TokenRequest API."""
    directory.mkdir(parents=True, exist_ok=True)
    token = plane.service_account_token(namespace, name)
    kubeconfig = plane.write_kubeconfig(directory / f"{name}.kubeconfig", token=token, namespace=namespace)
    return Kubectl(binary, kubeconfig, directory)


def harness_manifests() -> Iterator[Path]:
    """The manifests the test harness applies with ``ControlPlane.apply_manifest``: ``rbac/``.

    ``iter_manifests(DEPLOY_DIR)`` does not mean that: ``deploy/`` also holds the example
    Deployment, the Prometheus rules and toolhive's CRD for standalone clusters, which are neither
    kinds ``apply_manifest`` supports nor things every test should install. The CRD (toolhive's
    v0.63.0) is installed by server-side apply, :func:`testkit.crds.install_crd`.
    """
    yield from iter_manifests(DEPLOY_DIR / "rbac")


def load_documents(text: str) -> list[dict[str, Any]]:
    """Parse a multi-document YAML stream, dropping empty documents."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def crd_untouched_view(api: client.ApiClient, name: str) -> dict[str, Any]:
    """The parts of CRD ``name`` that any write to it other than a status update would change.

    That is everything but ``status``, ``resourceVersion`` and the status subresource's
    ``managedFields`` entry: the API server's own controllers may still update the status (and so
    the resourceVersion) of an established CRD, while a client touching the CRD changes the spec,
    the labels or annotations (``last-applied-configuration``) or adds a ``managedFields`` entry.
    """
    crd = raw_request(api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    metadata = dict(crd["metadata"])
    metadata.pop("resourceVersion")
    metadata["managedFields"] = [
        entry for entry in metadata.get("managedFields", []) if entry.get("subresource") != "status"
    ]
    return {"metadata": metadata, "spec": crd["spec"]}


def changed_parts(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Name what differs between two :func:`crd_untouched_view` results (``spec``, ``metadata.x``).

    An assertion on the whole ~700 kB CRD would drown the one field that changed.
    """
    changed = ["spec"] if before["spec"] != after["spec"] else []
    keys = sorted(set(before["metadata"]) | set(after["metadata"]))
    changed += [f"metadata.{key}" for key in keys if before["metadata"].get(key) != after["metadata"].get(key)]
    return changed
