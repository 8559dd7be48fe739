"""Helpers shared by the runtime tests (not a test module): a barrier over a runtime's actors."""

from __future__ import annotations

import urllib.request

from testkit.waits import bound
from tests.servers.fixtures import RunningServer
from vmcp_actors.backend.messages import Subscribe
from vmcp_actors.health.messages import Refresh
from vmcp_actors.runtime.messages import BackendActorQuery, HealthActorQuery
from vmcp_actors.runtime.runtime import Runtime


def settle(runtime: Runtime) -> None:
    """Return once every message the backend actors and then the health actor had queued is handled and reported.

    An ``ask`` is answered after everything queued before it, so asking each backend
    actor (a no-op re-subscription) and then the health actor (a refresh) is a barrier:
    whatever the backends published before, the health actor has folded, and the
    reporter has written.  It lets a test check "the status never said X" at a moment it
    chooses, instead of hoping a wrong status would have shown up by then.
    """
    health = runtime._actor_ref(HealthActorQuery(), timeout=bound())
    assert health is not None
    for name in runtime.snapshots():
        backend = runtime._actor_ref(BackendActorQuery(name), timeout=bound())
        if backend is not None:
            backend.ask(Subscribe(health), timeout=bound())
    health.ask(Refresh(), timeout=bound())
    runtime.reporter.wait_idle(bound())


def release(server: RunningServer) -> None:
    """Let a ``guarded_server.py --hold-initialize`` answer the ``initialize`` it holds."""
    request = urllib.request.Request(server.url("/release"), data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=bound()) as response:
        assert response.status == 200
