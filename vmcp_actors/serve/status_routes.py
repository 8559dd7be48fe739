"""The operational endpoints of ``vmcp-actors serve``, beside ``/mcp`` (as toolhive's vMCP has them).

* ``GET /health``: 200 while the process serves;
* ``GET /readyz``: 200 when the phase is Ready or Degraded, 503 otherwise; the phase in the body;
* ``GET /status``: the status JSON in the CRD's shape;
* ``GET /api/backends/health``: per backend, its health, state, failures, last error, probe
  latency, and whether this replica leads (``leading``: ``null`` without leader election);
* ``GET /metrics`` (when the runtime has metrics): prometheus_client's exposition.

``/status``, ``/api/backends/health`` and ``/metrics`` say what the backends are and how they
fail, so they get the same DNS-rebinding protection as ``/mcp`` (a ``Host`` or ``Origin`` not in
the allowed lists is refused).  ``/health`` and ``/readyz`` say only whether the process is up
and ready, and must answer the kubelet, whose ``Host`` is the pod's IP: they are not checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vmcp_actors.model.codec import encode_status
from vmcp_actors.model.status import Phase
from vmcp_actors.runtime.runtime import Runtime

__all__ = ["backends_health_body", "status_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(check: TransportSecurityMiddleware, endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        refused = await check.validate_request(request, is_post=False)
        return refused if refused is not None else await endpoint(request)

    return guarded


class _GuardedApp:
    """An ASGI app (``/metrics``) behind the Host/Origin check."""

    def __init__(self, check: TransportSecurityMiddleware, inner: ASGIApp) -> None:
        self._check = check
        self._inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = await self._check.validate_request(Request(scope, receive), is_post=False)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self._inner(scope, receive, send)


def backends_health_body(runtime: Runtime) -> dict[str, Any]:
    """The ``/api/backends/health`` document (toolhive's shape, plus state, latency, tools, leading)."""
    status = runtime.status()
    backends: dict[str, Any] = {}
    counts: dict[str, int] = {}
    tools = runtime.tools()
    for name, snapshot in runtime.snapshots().items():
        entry = status.backend(name) if status is not None else None
        health = entry.status if entry is not None and entry.status else "unknown"
        counts[health] = counts.get(health, 0) + 1
        latency = snapshot.last_probe_latency
        backends[name] = {
            "status": health,
            "state": snapshot.state.value,
            "consecutiveFailures": entry.consecutive_failures if entry else snapshot.consecutive_failures,
            # A healthy backend's status message is "Healthy": not an error.
            "lastError": None
            if health == "ready"
            else (entry.message if entry and entry.message else snapshot.last_error) or None,
            "lastHealthCheck": entry.last_health_check.isoformat() if entry and entry.last_health_check else None,
            "circuitBreakerState": entry.circuit_breaker_state.value if entry and entry.circuit_breaker_state else None,
            "probeLatencyMs": round(latency * 1000, 3) if latency is not None else None,
            "tools": sum(1 for tool in tools if tool.backend == name),
        }
    summary = {"total": len(backends), **counts}
    return {"monitoring_enabled": True, "leading": runtime.leading, "summary": summary, "backends": backends}


def status_routes(runtime: Runtime, security: TransportSecuritySettings) -> list[Route]:
    """The routes above, for ``runtime``; ``security`` is ``/mcp``'s Host/Origin policy."""
    check = TransportSecurityMiddleware(security)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        status = runtime.status()
        phase = status.phase if status is not None else Phase.PENDING
        ready = phase in (Phase.READY, Phase.DEGRADED)
        body = {"ready": ready, "phase": phase.value, "message": status.message if status else ""}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def status_json(request: Request) -> Response:
        status = runtime.status()
        if status is None:
            return JSONResponse({"phase": Phase.PENDING.value}, status_code=503)
        return JSONResponse(encode_status(status))

    async def backends_health(request: Request) -> Response:
        return JSONResponse(backends_health_body(runtime))

    routes: list[Route] = [
        Route("/health", health, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/status", _guarded(check, status_json), methods=["GET"]),
        Route("/api/backends/health", _guarded(check, backends_health), methods=["GET"]),
    ]
    if runtime.metrics is not None:
        from vmcp_actors.metrics.http import metrics_app

        exposition: Any = metrics_app(runtime.metrics.registry)
        routes.append(Route("/metrics", _GuardedApp(check, exposition), methods=["GET"]))  # an ASGI app, no redirect
    return routes
