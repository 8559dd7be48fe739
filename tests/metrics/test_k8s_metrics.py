"""A runtime whose Kubernetes sink hits 403, then gets its Role: what the metrics show.

A real kube-apiserver with RBAC: the runtime writes as a ServiceAccount that exists but has
no Role yet, so every request is forbidden; once the project's Role is applied the pending
status lands.  Requests are counted by verb and code, writes by outcome.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from testkit.project import DEPLOY_DIR, create_vmcp, get_vmcp
from testkit.waits import bound
from tests.metrics.scrape import Samples, eventually, scrape_url
from tests.sinks import FAST_HEALTH
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.metrics.http import serve_metrics
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

RUNTIME_SA = "vmcp-actors"
FAST_RETRY = Backoff(initial=0.05, maximum=0.25, factor=2.0, jitter=0.2)


@pytest.fixture
def vmcp(admin_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return create_vmcp(admin_api, namespace)


def test_a_forbidden_sink_is_counted_and_its_recovery_too(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str, vmcp: dict[str, Any]
) -> None:
    # The identity exists and is bound, but the Role it is bound to does not exist yet.
    control_plane.apply_manifest(DEPLOY_DIR / "rbac" / "service_account.yaml", namespace=namespace)
    control_plane.apply_manifest(DEPLOY_DIR / "rbac" / "role_binding.yaml", namespace=namespace)
    api = control_plane.service_account_api_client(namespace, RUNTIME_SA)
    reporter = ActorReporter(K8sReporter("vmcp", namespace, api, qps=0), backoff=FAST_RETRY, flush_timeout=10.0)
    runtime = Runtime.start(RuntimeConfig(backends=[], failure_handling=FAST_HEALTH), reporter)
    assert runtime.metrics is not None
    observer = runtime.metrics
    server = serve_metrics(observer.registry, 0)

    def scrape() -> Samples:
        observer.flush(bound(10.0))
        return scrape_url(server.url)

    try:
        forbidden = eventually(
            scrape,
            lambda s: s.value("vmcp_status_writes_total", sink="kubernetes", outcome="failed") >= 2,
            "two forbidden writes",
        )
        assert forbidden.value("vmcp_kubernetes_requests_total", verb="get", code="403") >= 2
        assert forbidden.value("vmcp_kubernetes_requests_total", verb="patch", code="200") == 0.0
        assert forbidden.get("vmcp_status_pending") == 1.0
        assert forbidden.value("vmcp_status_writes_total", sink="kubernetes", outcome="written") == 0.0
        assert forbidden.get("vmcp_phase", phase="Ready") == 1.0  # no backends: the status says Ready

        control_plane.apply_manifest(DEPLOY_DIR / "rbac" / "role.yaml", namespace=namespace)
        poll_until(
            lambda: (get_vmcp(admin_api, namespace).get("status") or {}).get("runtime", {}).get("phase"),
            timeout=bound(30),
            what="the pending status to land once the Role exists",
        )
        written = eventually(
            scrape,
            lambda s: (
                s.get("vmcp_status_pending") == 0.0
                and s.value("vmcp_status_writes_total", sink="kubernetes", outcome="written") >= 1
            ),
            "the status written and nothing pending",
        )
        assert written.value("vmcp_kubernetes_requests_total", verb="get", code="200") >= 1
        assert written.value("vmcp_kubernetes_requests_total", verb="patch", code="200") >= 1  # server-side apply
        assert written.value("vmcp_status_write_duration_seconds_count", sink="kubernetes") >= 3
        assert written.label_values("vmcp_kubernetes_requests_total", "code") <= {"200", "403", "409"}
        assert written.label_values("vmcp_kubernetes_requests_total", "verb") <= {"get", "patch", "update"}
        text = written.text
        assert namespace not in text
        assert "vmcp-actors" not in text
    finally:
        runtime.stop(bound(15.0))
        server.close()
        api.close()  # type: ignore[no-untyped-call]
