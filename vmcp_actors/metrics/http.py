"""Serving ``/metrics``: prometheus_client's own HTTP server, bound to 127.0.0.1 by default.

``vmcp-actors run --metrics-port N`` uses :func:`serve_metrics`.  A process that already
serves HTTP (``vmcp-actors serve``) mounts :func:`metrics_app` at ``/metrics`` instead of
opening a second port.  Both hand the exposition to prometheus_client, which speaks the
text format and OpenMetrics (by ``Accept`` header) and gzip; nothing here formats samples.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Final
from wsgiref.simple_server import WSGIServer

import attrs
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
    start_http_server,
)

from vmcp_actors.errors import ValidationError

__all__ = ["DEFAULT_HOST", "MetricsServer", "metrics_app", "process_registry", "serve_metrics"]

log = logging.getLogger(__name__)

#: Metrics stay on the loopback interface unless the operator says otherwise.
DEFAULT_HOST: Final = "127.0.0.1"


@attrs.define
class MetricsServer:
    """A running ``/metrics`` server; :meth:`close` stops it and joins its thread."""

    host: str
    port: int
    registry: CollectorRegistry
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Where to scrape, e.g. ``http://127.0.0.1:9464/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and join the thread; idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError("metrics_port", f"must be an integer from 0 to 65535, got {port!r}", port)
    return port


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host:
        raise ValidationError("metrics_host", f"must be an IP address, got {host!r}", host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValidationError("metrics_host", f"must be an IP address or localhost, got {host!r}", host) from None
    return host


def serve_metrics(registry: CollectorRegistry, port: int, host: str = DEFAULT_HOST) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` on a daemon thread.

    ``port`` 0 picks a free port (read it back from the result).  A port that cannot be
    bound raises :class:`~vmcp_actors.errors.ValidationError` naming ``metrics_port``.
    """
    port = _check_port(port)
    host = _check_host(host)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise ValidationError(
            "metrics_port", f"cannot listen on {host}:{port}: {error.strerror or error}", port
        ) from error
    thread.name = f"vmcp-metrics-http-{server.server_port}"
    bound = MetricsServer(host=host, port=int(server.server_port), registry=registry, server=server, thread=thread)
    log.info("metrics served at %s", bound.url)
    return bound


def process_registry() -> CollectorRegistry:
    """A registry for a whole process: the runtime adds its metrics, this adds the process's own.

    ``process_*`` (CPU, memory, file descriptors), ``python_info`` and ``python_gc_*``, as
    prometheus_client's default registry has them -- for the one runtime a command runs.
    """
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics_app(registry: CollectorRegistry) -> object:
    """An ASGI app answering with ``registry``'s exposition, to mount at ``/metrics``."""
    return make_asgi_app(registry=registry)
