"""Where this project keeps what the Kubernetes tests need: manifests and the envtest script.

Kept apart from ``conftest.py`` so test modules import plain helpers, never a conftest.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from kubernetes import client

from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DIR = REPO_ROOT / "deploy"
ENVTEST_SCRIPT = REPO_ROOT / "scripts" / "envtest.py"
CRD_NAME = "virtualmcpservers.toolhive.stacklok.dev"
_ENVTEST_MODULE = "vmcp_actors_envtest"


def load_envtest() -> ModuleType:
    """Import ``scripts/envtest.py`` (a script, not a package) once, so tests share its logic."""
    loaded = sys.modules.get(_ENVTEST_MODULE)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_ENVTEST_MODULE, ENVTEST_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {ENVTEST_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_ENVTEST_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_ENVTEST_MODULE]
        raise
    return module


def vmcp_manifest(name: str) -> dict[str, Any]:
    """A minimal valid VirtualMCPServer."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualMCPServer",
        "metadata": {"name": name},
        "spec": {"groupRef": {"name": "backends"}, "incomingAuth": {"type": "anonymous"}},
    }


def create_vmcp(api: client.ApiClient, namespace: str, name: str = "vmcp") -> dict[str, Any]:
    """Create a VirtualMCPServer and return the object the API server stored."""
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, vmcp_manifest(name)
    )
    return cast(dict[str, Any], created)


def get_vmcp(api: client.ApiClient, namespace: str, name: str = "vmcp") -> dict[str, Any]:
    """Read a VirtualMCPServer back from the API server."""
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return cast(dict[str, Any], obj)
