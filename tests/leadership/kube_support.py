"""What the leadership tests against the real API server share: RBAC, clients, electors, waiting.

The Role is the runtime's from the RBAC change (``deploy/rbac/role.yaml`` on the branch
that adds it): the VirtualMCPServer and its status, ``leases`` get/create/update/watch and
``events.k8s.io`` events create/patch, nothing more.  It is created here, in each test's
namespace, so the tests run as that ServiceAccount whatever ``deploy/`` holds; ``events``
can be left out to check that a missing grant costs nothing but the Events.

Timing: the tests shorten client-go's 15/10/2 s to a 3 s lease, a 2 s renew deadline and
a 0.5 s retry period (1 s per request), so a failover takes seconds, not tens of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from vmcp_actors.leadership.service import Leadership
from vmcp_actors.leadership.settings import LeaderElection

RUNTIME_SA = "vmcp-actors"
#: client-go's defaults scaled down for tests (lease 3 s, renew deadline 2 s, retry 0.5 s).
FAST = LeaderElection(lease_duration=3, renew_deadline=2, retry_period=0.5, request_timeout=1.0, events=False)

_T = TypeVar("_T")

VMCP_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["toolhive.stacklok.dev"], "resources": ["virtualmcpservers"], "verbs": ["get"]},
    {
        "apiGroups": ["toolhive.stacklok.dev"],
        "resources": ["virtualmcpservers/status"],
        "verbs": ["get", "update", "patch"],
    },
]
LEASE_RULE: dict[str, Any] = {
    "apiGroups": ["coordination.k8s.io"],
    "resources": ["leases"],
    "verbs": ["get", "create", "update", "watch"],
}
EVENTS_RULE: dict[str, Any] = {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}


def grant(
    plane: ControlPlane, namespace: str, *, leases: bool = True, events: bool = True, sa: str = RUNTIME_SA
) -> None:
    """A ServiceAccount ``sa`` bound to the runtime's Role (optionally without leases or events)."""
    rules = [*VMCP_RULES, *([LEASE_RULE] if leases else []), *([EVENTS_RULE] if events else [])]
    plane.apply_object({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}, namespace=namespace)
    plane.apply_object(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": sa}, "rules": rules},
        namespace=namespace,
    )
    plane.apply_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": sa},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        },
        namespace=namespace,
    )


class Member:
    """One elector (a Leadership) and the moments its leadership changed, by the monotonic clock."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership
        self.started: list[float] = []
        self.stopped: list[float] = []
        self.became_leader = threading.Event()
        leadership.on_change(self._changed)

    def _changed(self, leading: bool) -> None:
        (self.started if leading else self.stopped).append(time.monotonic())
        if leading:
            self.became_leader.set()

    @property
    def identity(self) -> str:
        return self.leadership.identity

    @property
    def leading(self) -> bool:
        return self.leadership.leading


class Group:
    """Electors for one VirtualMCPServer, each with its own ServiceAccount client; all stopped at the end."""

    def __init__(self, plane: ControlPlane, namespace: str, vmcp: str, settings: LeaderElection = FAST) -> None:
        self.plane = plane
        self.namespace = namespace
        self.vmcp = vmcp
        self.settings = settings
        self.members: list[Member] = []

    def add(self, name: str, *, start: bool = True, settings: LeaderElection | None = None) -> Member:
        chosen = settings or self.settings
        api = self.plane.service_account_api_client(self.namespace, RUNTIME_SA)
        identity = f"{name}_{len(self.members)}"
        leadership = Leadership(
            LeaderElection(
                identity=identity,
                lease_duration=chosen.lease_duration,
                renew_deadline=chosen.renew_deadline,
                retry_period=chosen.retry_period,
                request_timeout=chosen.request_timeout,
                events=chosen.events,
            ),
            self.vmcp,
            self.namespace,
            api,
        )
        member = Member(leadership)
        self.members.append(member)
        if start:
            leadership.start()
        return member

    def leaders(self) -> list[Member]:
        return [m for m in self.members if m.leading]

    def one_leader(self, timeout: float) -> Member:
        def check() -> Member | None:
            leaders = self.leaders()
            assert len(leaders) <= 1, f"two leaders: {[m.identity for m in leaders]}"
            return leaders[0] if leaders else None

        return poll_until(check, timeout=timeout, what=f"one leader of {self.vmcp}")

    def stop_all(self) -> None:
        for member in self.members:
            member.leadership.stop(5.0)


@contextmanager
def group(plane: ControlPlane, namespace: str, vmcp: str, settings: LeaderElection = FAST) -> Iterator[Group]:
    electors = Group(plane, namespace, vmcp, settings)
    try:
        yield electors
    finally:
        electors.stop_all()


def watch_at_most_one_leader(electors: Group, seconds: float, step: float = 0.02) -> int:
    """Sample every ``step`` for ``seconds``: never two leaders; returns how many samples had one."""
    samples_with_leader = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        leaders = electors.leaders()
        assert len(leaders) <= 1, f"two leaders at once: {[m.identity for m in leaders]}"
        samples_with_leader += len(leaders)
        time.sleep(step)
    return samples_with_leader


def read_lease(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    lease = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "coordination.k8s.io", "v1", namespace, "leases", name
    )
    assert isinstance(lease, dict)
    return lease


def wait_for(check: Callable[[], _T | None], what: str, timeout: float) -> _T:
    return poll_until(check, timeout=timeout, what=what)
