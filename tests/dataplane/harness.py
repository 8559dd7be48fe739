"""Shared helpers for the data plane tests: a runtime fixture and a waiter on its events."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.fixtures import CONFORMANCE_SERVER, DATAPLANE_SERVER, RunningServer, ServerFactory
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.aggregation import AggregationConfig
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.dataplane.notify import RuntimeEvent
from vmcp_actors.reporting.sinks import NoOpReporter
from vmcp_actors.runtime.runtime import Runtime

FAST_RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1), probe_timeout=2.0)
FAST_HEALTH = FailureHandling(
    health_check_interval=2.0, health_check_timeout=1.5, unhealthy_threshold=3, status_reporting_interval=30.0
)
WAIT = 30.0


def stdio_backend(name: str, script: str = "dataplane") -> BackendSpec:
    path = DATAPLANE_SERVER if script == "dataplane" else CONFORMANCE_SERVER
    args = [str(path), "--transport", "stdio"] + (["--name", name] if script == "dataplane" else [])
    return BackendSpec(name=name, type="stdio", command=sys.executable, args=args)


def http_backend(name: str, server: RunningServer, transport: str = "streamable-http") -> BackendSpec:
    return BackendSpec(name=name, type=transport, url=server.url("/sse" if transport == "sse" else "/mcp"), timeout=10)


class Watcher:
    """Records every runtime event and waits for a condition on the runtime to hold."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.events: list[RuntimeEvent] = []
        self._changed = threading.Condition()
        self.unsubscribe = runtime.subscribe(self._record)

    def _record(self, event: RuntimeEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of_type(self, kind: type[Any]) -> list[Any]:
        with self._changed:
            return [event for event in self.events if isinstance(event, kind)]

    def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` holds, re-checking on every event (and at the deadline)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._changed.wait(left)

    def tools(self, *names: str) -> None:
        """Wait until exactly these tool names are exposed."""
        want = set(names)
        self.until(lambda: {t.name for t in self.runtime.tools()} == want, f"tools {sorted(want)}")

    def has_tools(self, *names: str) -> None:
        """Wait until at least these tool names are exposed."""
        want = set(names)
        self.until(lambda: want <= {t.name for t in self.runtime.tools()}, f"tools {sorted(want)}")


@pytest.fixture
def start_runtime(mcp_servers: ServerFactory) -> Iterator[Callable[..., tuple[Runtime, Watcher]]]:
    """Start runtimes; they stop before the test's servers are killed (this depends on ``mcp_servers``)."""
    started: list[Runtime] = []

    def start(
        *backends: BackendSpec, aggregation: AggregationConfig | None = None, failure: FailureHandling = FAST_HEALTH
    ) -> tuple[Runtime, Watcher]:
        config = RuntimeConfig(
            backends=backends, failure_handling=failure, aggregation=aggregation or AggregationConfig()
        )
        runtime = Runtime.start(config, NoOpReporter(), lifecycle_policy=FAST_RECONNECT)
        started.append(runtime)
        return runtime, Watcher(runtime)

    yield start
    for runtime in started:
        runtime.stop(15.0)
