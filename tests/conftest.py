"""The one conftest: real MCP server fixtures and a real Kubernetes API server for the tests.

Server fixtures (subprocesses on 127.0.0.1, a leak check) come from :mod:`tests.servers.fixtures`.
Modules that run real processes mark themselves ``integration`` (and use ``no_leaks``); those that
need the API server are marked ``kube`` automatically, from their use of ``control_plane``.

Kubernetes: see :mod:`testkit.control_plane`.

The control plane is session scoped: starting etcd and kube-apiserver takes seconds, so every test
in the session shares one and isolates itself with its own namespace (:func:`namespace`).

Missing binaries are a test *failure*, never a skip: a silently skipped Kubernetes suite would
hide exactly the regressions it exists to catch.

The binaries are provisioned after collection (:func:`pytest_collection_modifyitems`), not inside
the fixture: a cold ``kube-apiserver`` build takes minutes, longer than the per-test
``pytest-timeout`` that would otherwise cut it off, and its progress should be visible.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testkit.cli_tools import TOOLHIVE_CRD_V0_63_0
from testkit.control_plane import ControlPlane
from testkit.crds import install_crd
from testkit.project import load_envtest
from tests.servers.fixtures import (
    ServerFactory,
    echo_http_server,
    echo_sse_server,
    echo_stdio_command,
    garbage_stdio_command,
    loop_thread,
    mcp_servers,
    no_leaks,
)

__all__ = [
    "ServerFactory",
    "admin_api",
    "control_plane",
    "echo_http_server",
    "echo_sse_server",
    "echo_stdio_command",
    "garbage_stdio_command",
    "loop_thread",
    "mcp_servers",
    "namespace",
    "no_leaks",
]

_BINARIES = pytest.StashKey["Path | str"]()
"""The directory with kube-apiserver and etcd, or the message saying why there is none."""


def _provision() -> Path | str:
    """Run ``scripts/envtest.py ensure``; return the binaries directory or the failure message."""
    envtest = load_envtest()
    try:
        binaries: Path = envtest.ensure()
    except envtest.EnvtestError as error:
        return str(error)
    return binaries


@pytest.hookimpl(tryfirst=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark every test that needs the API server ``kube`` (and ``integration``), before ``-m`` selects."""
    if "control_plane" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.kube)
        item.add_marker(pytest.mark.integration)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Provision the binaries once, before any test (and its timeout) starts, if a test needs them.

    Runs last so tests deselected by ``-k``/``-m`` do not count. Output capture is suspended
    meanwhile so a cold build's progress reaches the terminal.
    """
    if config.option.collectonly or not any(item.get_closest_marker("kube") for item in items):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        config.stash[_BINARIES] = _provision()


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A started control plane with toolhive's current (v0.63.0) CRD installed and Established.

    That CRD has ``status.runtime``, so the runtime writes only there; tests of the legacy
    layout start a plane of their own with the pre-v0.47 CRD.

    Its working directory (certificates, etcd data, ``etcd.log``, ``kube-apiserver.log``) lives in
    pytest's base temp directory, so the logs of a failed run stay around for inspection.
    """
    binaries = request.config.stash.get(_BINARIES, None)
    if binaries is None:
        binaries = _provision()
    if isinstance(binaries, str):
        pytest.fail(f"Kubernetes test binaries unavailable: {binaries}", pytrace=False)
    plane = ControlPlane(binaries, workdir=tmp_path_factory.mktemp("control-plane"))
    started = time.monotonic()
    plane.start()
    try:
        install_crd(plane, TOOLHIVE_CRD_V0_63_0)
        sys.stderr.write(f"control plane ready in {time.monotonic() - started:.1f}s at {plane.url}\n")
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def admin_api(control_plane: ControlPlane) -> client.ApiClient:
    """A ``system:masters`` client for the session's control plane."""
    return control_plane.admin_api_client()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """Create a namespace unique to this test and delete it afterwards.

    Without a controller manager the deleted namespace stays ``Terminating``; the names never
    collide, so that is harmless.
    """
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(control_plane.admin_api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
