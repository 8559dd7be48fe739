"""``/metrics`` over real HTTP on 127.0.0.1, and the ASGI app ``serve`` mounts."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.metrics.scrape import Samples, scrape_url
from vmcp_actors.errors import ValidationError
from vmcp_actors.metrics.http import metrics_app, serve_metrics
from vmcp_actors.metrics.registry import VmcpMetrics

pytestmark = [pytest.mark.usefixtures("no_leaks")]


def test_serves_the_registry_on_loopback_and_closes_cleanly() -> None:
    metrics = VmcpMetrics()
    metrics.kubernetes_requests.labels("update", "403").inc()
    server = serve_metrics(metrics.registry, 0)
    try:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        samples = scrape_url(server.url)
        assert samples.value("vmcp_kubernetes_requests_total", verb="update", code="403") == 1.0
        assert samples.get("vmcp_phase", phase="Pending") == 1.0
        request = urllib.request.Request(server.url, headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.read().decode().rstrip().endswith("# EOF")
    finally:
        server.close()
        server.close()  # idempotent
    assert not [t for t in threading.enumerate() if t.name.startswith("vmcp-metrics-http")]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


def test_a_port_in_use_or_out_of_range_and_a_bad_host_are_named() -> None:
    metrics = VmcpMetrics()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValidationError, match=f"cannot listen on 127.0.0.1:{port}") as caught:
            serve_metrics(metrics.registry, port)
        assert caught.value.field == "metrics_port"
    for bad in (-1, 70000, True):
        with pytest.raises(ValidationError, match="metrics_port"):
            serve_metrics(metrics.registry, bad)
    with pytest.raises(ValidationError, match="metrics_host"):
        serve_metrics(metrics.registry, 0, "example.com")


def test_the_asgi_app_answers_with_the_exposition() -> None:
    metrics = VmcpMetrics()
    metrics.leader.labels("pod-a").set(1)
    app: Any = metrics_app(metrics.registry)
    sent: list[dict[str, Any]] = []

    async def call() -> None:
        scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(call())
    assert sent[0]["status"] == 200
    body = b"".join(message.get("body", b"") for message in sent[1:]).decode()
    assert Samples(body).value("vmcp_leader", identity="pod-a") == 1.0
