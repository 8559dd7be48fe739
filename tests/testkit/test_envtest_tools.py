"""``scripts/envtest.py``'s kubectl and promtool provisioning: the pure parts and the cache contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.cli_tools import PROVISIONING_TIMEOUT_S, provisioned, run_checked
from testkit.project import load_envtest

envtest = load_envtest()


def fake_binary(path: Path, script: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}")
    path.chmod(0o755)
    return path


def test_prometheus_module_versions_map_to_releases() -> None:
    assert envtest.prometheus_release("v0.316.0") == "3.16.0"
    assert envtest.prometheus_release("v0.307.12") == "3.7.12"
    for malformed in ("v3.16.0", "v0.316", "0.316.0"):
        with pytest.raises(envtest.EnvtestError, match="malformed Prometheus module version"):
            envtest.prometheus_release(malformed)


def test_wrapper_tools_pin_every_kubernetes_command() -> None:
    tools = envtest.kubernetes_tools_go(envtest.KUBERNETES_COMMANDS)
    assert tools.startswith("//go:build tools\n")
    assert '\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n' in tools
    assert '\t_ "k8s.io/kubernetes/cmd/kubectl"\n' in tools


def test_promtool_ldflags_report_the_pinned_release() -> None:
    assert f"version.Version={envtest.prometheus_release()} " in envtest.promtool_ldflags() + " "


def test_promtool_cache_is_beside_the_kubernetes_cache(tmp_path: Path) -> None:
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    assert envtest.promtool_dir(environ).parent == envtest.cache_dir(environ).parent
    assert envtest.promtool_dir(environ).name == f"promtool-{envtest.prometheus_release()}"


def test_kubectl_from_kubebuilder_assets_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubectl = fake_binary(tmp_path / "kubectl")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert envtest.ensure_kubectl() == kubectl


def test_a_kubectl_not_stamped_or_of_another_version_is_not_current(tmp_path: Path) -> None:
    version = json.dumps({"clientVersion": {"gitVersion": envtest.KUBERNETES_VERSION}})
    fake_binary(tmp_path / "kubectl", f"echo '{version}'\n")
    assert not envtest.kubectl_is_current(tmp_path), "no stamp: not current"
    envtest.write_stamp(tmp_path, {"kubectl": envtest.KUBERNETES_VERSION})
    assert envtest.kubectl_is_current(tmp_path)
    other = json.dumps({"clientVersion": {"gitVersion": "v1.30.0"}})
    fake_binary(tmp_path / "kubectl", f"echo '{other}'\n")
    assert not envtest.kubectl_is_current(tmp_path), "stamped, but the binary reports another version"


@pytest.mark.timeout(PROVISIONING_TIMEOUT_S)
def test_cached_kubectl_is_the_pinned_release(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's kubectl, whatever ``$KUBEBUILDER_ASSETS`` holds: that one is a developer's choice."""
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    kubectl = provisioned(request.config, "kubectl", envtest.ensure_kubectl)
    assert kubectl == envtest.cache_dir() / "kubectl"
    reported = json.loads(run_checked([str(kubectl), "version", "--client", "--output=json"]).stdout)
    assert reported["clientVersion"]["gitVersion"] == envtest.KUBERNETES_VERSION
