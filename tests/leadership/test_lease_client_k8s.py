"""``LeaseClient`` against the real API server: compare-and-swap, the watch, the errors.

The elector's safety rests on these: a create that finds the Lease and a replace with an
old resourceVersion must both be conflicts; the watch of one named Lease must deliver its
current state and every change, needing only ``watch``; ``close`` must end a blocked
read at once; and a missing RBAC grant must name the verb and resource.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from tests.leadership.kube_support import RUNTIME_SA, grant
from vmcp_actors.errors import KubernetesPermissionError, KubernetesTransientError
from vmcp_actors.leadership.api_errors import Conflict
from vmcp_actors.leadership.election import LeaseRecord
from vmcp_actors.leadership.lease_client import LeaseClient, WatchEvent

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(holder: str, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, 3, T0, datetime.now(UTC), transitions)


@pytest.fixture
def lease_client(control_plane: ControlPlane, namespace: str) -> LeaseClient:
    grant(control_plane, namespace)
    api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    return LeaseClient(api, namespace, "demo-vmcp-status", request_timeout=5.0)


def test_every_write_is_a_compare_and_swap(lease_client: LeaseClient) -> None:
    assert lease_client.get() is None
    created = lease_client.create(record("pod-a"))
    assert created.record.holder_identity == "pod-a"
    assert created.record.acquire_time == T0  # micro-times survive the round trip
    with pytest.raises(Conflict):
        lease_client.create(record("pod-b"))
    renewed = lease_client.replace(record("pod-a"), created.resource_version)
    assert renewed.resource_version != created.resource_version
    with pytest.raises(Conflict):
        lease_client.replace(record("pod-b", 1), created.resource_version)  # an outdated view
    stored = lease_client.get()
    assert stored == renewed
    released = lease_client.replace(LeaseRecord("", 1, T0, T0, 0), renewed.resource_version)
    assert released.record.released


def test_the_watch_sees_the_current_state_then_every_change_and_closes_at_once(lease_client: LeaseClient) -> None:
    created = lease_client.create(record("pod-a"))
    watch = lease_client.open_watch()
    events: list[WatchEvent] = []
    modified = threading.Event()

    def consume() -> None:
        for event in watch:
            events.append(event)
            if event.type == "MODIFIED":
                modified.set()

    reader = threading.Thread(target=consume, name="test-watch-reader")
    reader.start()
    try:
        renewed = lease_client.replace(record("pod-a"), created.resource_version)
        assert modified.wait(5)
        assert [e.type for e in events] == ["ADDED", "MODIFIED"]
        assert events[0].lease == created
        assert events[1].lease == renewed
        # The reader is now blocked on the socket: close() must end it without the server.
        closing = time.monotonic()
        watch.close()
        reader.join(5)
        assert not reader.is_alive()
        assert time.monotonic() - closing < 1.0
    finally:
        watch.close()
        reader.join(5)


def test_a_missing_grant_names_the_verb_and_the_resource(control_plane: ControlPlane, namespace: str) -> None:
    grant(control_plane, namespace, leases=False)
    api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    denied = LeaseClient(api, namespace, "demo-vmcp-status", request_timeout=5.0)
    for verb, call in (
        ("get", denied.get),
        ("create", lambda: denied.create(record("pod-a"))),
        ("update", lambda: denied.replace(record("pod-a"), "1")),
        ("watch", denied.open_watch),
    ):
        with pytest.raises(KubernetesPermissionError) as err:
            call()
        assert (err.value.verb, err.value.resource, err.value.group) == (verb, "leases", "coordination.k8s.io")
        assert f"cannot {verb} leases in namespace {namespace}" in str(err.value)
        assert f"system:serviceaccount:{namespace}:{RUNTIME_SA}" in str(err.value)


def test_no_answer_is_a_transient_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = client.Configuration(host=f"https://127.0.0.1:{port}")
    configuration.retries = 0
    with client.ApiClient(configuration) as api:
        nowhere = LeaseClient(api, "team-a", "demo-vmcp-status", request_timeout=1.0)
        with pytest.raises(KubernetesTransientError, match="cannot reach the Kubernetes API server to get Lease"):
            nowhere.get()
