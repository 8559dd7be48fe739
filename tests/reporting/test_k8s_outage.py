"""After an API server outage the latest status lands within 2 s of the server answering again.

Found driving the runtime with a real ``kubectl``: after a 33 s outage the latest status landed
22.2 s after the server came back, because the retry delays had grown to 28 s and a newer
status does not shorten the wait.  A write that gets no answer at all is now retried within
a second (cheap for a server that is not there), while answered failures keep the long
backoff, so the server is not hammered when it is up but struggling.  The API server here is
really stopped and started again (same port, same etcd), with the reporter's default backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import urllib3
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.project import create_vmcp, get_vmcp
from tests.reporting.kube_support import actor_reporters, runtime_status, says, shows, wait_for
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.coalescing import DEFAULT_RETRY_BACKOFF
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

__all__ = ["actor_reporters"]  # fixture used by the test below

OUTAGE_S = 15.0
#: Landed this long after the API server answers again, at most.
RECOVERY_BOUND_S = 2.0


def test_the_latest_status_lands_within_2s_of_the_api_server_answering_again(
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    namespace: str,
    actor_reporters: Callable[..., ActorReporter],
) -> None:
    create_vmcp(admin_api, namespace)
    probe_api = control_plane.admin_api_client()
    sink = K8sReporter("vmcp", namespace, admin_api, request_timeout=2.0)
    reporter = actor_reporters(sink, backoff=DEFAULT_RETRY_BACKOFF)  # the default: 100 ms doubling to 30 s
    reporter.report_status(runtime_status(0))
    wait_for(lambda: shows(admin_api, namespace, runtime_status(0)), "the status before the outage")

    control_plane.stop_apiserver(graceful=False)
    index = 0
    latest: list[Status] = []
    # Two watchers time, every 20 ms, when the server first answers (a GET of the object succeeds,
    # which happens before its /readyz says so) and when the latest status first shows. The API
    # server itself is started from this thread: its process lives as long as the starting thread.
    answered_at: list[float] = []
    landed_at: list[float] = []
    watchers = [
        threading.Thread(target=first_time, args=(lambda: get_vmcp(probe_api, namespace), answered_at)),
        threading.Thread(target=first_time, args=(lambda: says(get_vmcp(probe_api, namespace), latest[0]), landed_at)),
    ]
    try:
        outage_started = time.monotonic()
        while time.monotonic() - outage_started < OUTAGE_S:
            index += 1
            reporter.report_status(runtime_status(index, degraded=bool(index % 2)))
            time.sleep(1.0)  # a new status every second, as probes would find; pacing, not synchronisation
        attempts_while_down = reporter.stats().failed_attempts
        latest.append(runtime_status(index, degraded=bool(index % 2)))
        for watcher in watchers:
            watcher.start()
    finally:
        control_plane.start_apiserver()  # returns once /readyz answers 200
    for watcher in watchers:
        watcher.join(90)
    assert answered_at, "the API server never answered a GET"
    assert landed_at, "the latest status never landed"
    late = max(landed_at[0] - answered_at[0], 0.0)
    assert late <= RECOVERY_BOUND_S, f"landed {late:.2f} s after the API server answered again"
    # Not hammered while down: about one attempt a second (the first few sooner), not a busy loop.
    assert 5 <= attempts_while_down <= OUTAGE_S * 1.5 + 5, attempts_while_down


def first_time(check: Callable[[], object], found: list[float]) -> None:
    """Record when ``check`` first returns something true without raising (polled every 20 ms, for 80 s)."""
    deadline = time.monotonic() + 80.0
    while time.monotonic() < deadline:
        try:
            if check():
                found.append(time.monotonic())
                return
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError):
            pass
        time.sleep(0.02)
