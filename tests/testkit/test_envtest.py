"""The pure parts of ``scripts/envtest.py``: go.mod parsing, wrapper generation, cache location."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.project import load_envtest

envtest = load_envtest()

KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/apiserver v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiserver => ./staging/src/k8s.io/apiserver
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
"""


def test_staging_modules_come_from_the_replace_directives() -> None:
    assert envtest.staging_modules(KUBERNETES_GO_MOD) == ["k8s.io/api", "k8s.io/apiserver", "k8s.io/kms"]


def test_a_go_mod_without_staging_replaces_is_an_error() -> None:
    with pytest.raises(envtest.EnvtestError, match=r"no \./staging/src replace"):
        envtest.staging_modules("module example.com/x\n\ngo 1.26\n")


def test_wrapper_go_mod_pins_every_staging_module_to_the_matching_tag() -> None:
    wrapper = envtest.wrapper_go_mod(KUBERNETES_GO_MOD)
    tag = envtest.staging_version(envtest.KUBERNETES_VERSION)
    assert f"require k8s.io/kubernetes {envtest.KUBERNETES_VERSION}\n" in wrapper
    assert "go 1.26\n" in wrapper
    for module in ("k8s.io/api", "k8s.io/apiserver", "k8s.io/kms"):
        assert f"\t{module} => {module} {tag}\n" in wrapper
    assert "github.com/example/fork" not in wrapper


def test_version_helpers() -> None:
    assert envtest.staging_version("v1.36.3") == "v0.36.3"
    assert envtest.minor_of("v1.36.3") == "36"
    with pytest.raises(envtest.EnvtestError):
        envtest.minor_of("1.36")
    assert f"gitMinor={envtest.minor_of(envtest.KUBERNETES_VERSION)}" in envtest.kube_apiserver_ldflags()


def test_cache_root_respects_an_absolute_xdg_cache_home(tmp_path: Path) -> None:
    assert envtest.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "vmcp-actors" / "envtest"
    assert envtest.cache_root({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "vmcp-actors" / "envtest"
    assert envtest.cache_root({}) == Path.home() / ".cache" / "vmcp-actors" / "envtest"


def test_goflags_never_carry_a_conflicting_mod_flag() -> None:
    assert envtest.sanitized_goflags("-mod=vendor -buildvcs=false") == "-buildvcs=false -mod=mod"
    assert envtest.sanitized_goflags("") == "-mod=mod"


def test_kubebuilder_assets_are_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("kube-apiserver", "etcd"):
        binary = tmp_path / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert envtest.ensure() == tmp_path
