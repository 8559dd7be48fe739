"""``Leadership``: leader election and Events for one replica, as the runtime uses them.

It bundles the :class:`~vmcp_actors.leadership.elector.Elector` (whose gate the
Kubernetes status sink consults before every write) and the
:class:`~vmcp_actors.leadership.events.EventRecorder`, and says how the runtime plugs
them in:

* :meth:`Leadership.reporter_options` -- what the status sink is built with: the gate,
  and a request timeout short enough that a write sent just before the renew deadline
  cannot land after a rival took over;
* :meth:`Leadership.tap` -- the reporter the health actor reports to, which also shows
  each status to the Event recorder (a ``tell``; the status path never waits for it);
* :meth:`Leadership.on_change` -- hears StartedLeading / StoppedLeading, so the runtime
  re-sends its latest status the moment it leads;
* :meth:`Leadership.stop` -- Events stop, then the Lease is released (graceful), or
  :meth:`Leadership.kill` -- everything stops and the Lease is left to expire.

:func:`resolve` decides, for ``Runtime.start``, whether leader election runs: on by
default in Kubernetes mode (``VMCP_NAME`` and ``VMCP_NAMESPACE`` set), off when
``VMCP_LEADER_ELECTION=false``, or as the embedder says.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.errors import ValidationError
from vmcp_actors.leadership.elector import Elector
from vmcp_actors.leadership.event_client import EventClient
from vmcp_actors.leadership.event_series import ObjectRef, SeriesPolicy
from vmcp_actors.leadership.events import EventRecorder
from vmcp_actors.leadership.lease_client import LeaseClient
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.factory import ENV_VMCP_NAME, ENV_VMCP_NAMESPACE, new_reporter
from vmcp_actors.reporting.kubernetes.client import load_api_client
from vmcp_actors.reporting.kubernetes.mapping import GROUP, VERSION
from vmcp_actors.reporting.protocol import Reporter, Shutdown

if TYPE_CHECKING:
    from kubernetes import client

__all__ = ["Leadership", "StatusTap", "resolve"]

log = logging.getLogger(__name__)

#: What :meth:`Leadership.stop` keeps back for the release when Events are slow to stop.
_EVENTS_SHARE: Final = 0.3


class StatusTap:
    """A reporter that forwards every status to ``inner`` and shows it to ``observe``.

    ``observe`` must not block (the Event recorder only sends its actor a message).
    """

    def __init__(self, inner: Reporter, observe: Callable[[Status], None]) -> None:
        self._inner = inner
        self._observe = observe

    def report_status(self, status: Status | None) -> None:
        """Forward ``status``; then let ``observe`` see it."""
        self._inner.report_status(status)
        if status is not None:
            self._observe(status)

    def start(self) -> Shutdown:
        """Start the inner reporter."""
        return self._inner.start()


class Leadership:
    """Leader election (and, from the leader, Events) for VirtualMCPServer ``namespace/vmcp_name``.

    :param settings: timing, identity override, whether to emit Events.
    :param api_client: the client for the Lease and the Events; closed by :meth:`stop`
        when ``owns_client``.
    :param env: where ``POD_NAME`` is read for the default identity.
    :param scheduler: ticks and Event flushes; by default the elector and the recorder
        each run their own timer thread.
    """

    def __init__(
        self,
        settings: LeaderElection,
        vmcp_name: str,
        namespace: str,
        api_client: client.ApiClient,
        *,
        owns_client: bool = False,
        env: Mapping[str, str] | None = None,
        scheduler: Scheduler | None = None,
        event_policy: SeriesPolicy | None = None,
    ) -> None:
        environ: Mapping[str, str] = os.environ if env is None else env
        identity = settings.resolve_identity(environ, socket.gethostname(), secrets.token_hex(4))
        self.settings = settings
        self.config = settings.elector_config(vmcp_name, namespace, identity=identity)
        self._api_client = api_client
        self._owns_client = owns_client
        self._subscribers: list[Callable[[bool], None]] = []
        lease = LeaseClient(api_client, namespace, self.config.lease_name, self.config.request_timeout)
        self.elector = Elector(self.config, lease, on_change=self._changed, scheduler=scheduler)
        self.gate = self.elector.gate
        self.events: EventRecorder | None = None
        if settings.events:
            regarding = ObjectRef(f"{GROUP}/{VERSION}", "VirtualMCPServer", vmcp_name, namespace)
            self.events = EventRecorder(
                EventClient(api_client, regarding, self.config.request_timeout),
                identity=identity,
                lease_name=self.config.lease_name,
                gate=self.gate,
                scheduler=scheduler,
                policy=event_policy,
            )
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"Leadership({self.config.namespace}/{self.config.lease_name} as {self.identity})"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, settings: LeaderElection | None = None
    ) -> Leadership | None:
        """Leadership for the VirtualMCPServer the operator configured, or None.

        None outside Kubernetes mode (``VMCP_NAME``/``VMCP_NAMESPACE`` not both set) and
        when leader election is off (``settings.enabled``, else ``VMCP_LEADER_ELECTION``).
        """
        environ: Mapping[str, str] = os.environ if env is None else env
        name, namespace = environ.get(ENV_VMCP_NAME) or "", environ.get(ENV_VMCP_NAMESPACE) or ""
        chosen = settings if settings is not None else LeaderElection.from_env(environ)
        if not (name and namespace) or not chosen.enabled:
            return None
        return cls(chosen, name, namespace, load_api_client(environ), owns_client=True, env=environ)

    # ------------------------------------------------------------------ reading

    @property
    def identity(self) -> str:
        """This replica's holder identity."""
        return self.config.identity

    @property
    def leading(self) -> bool:
        """Whether this replica leads now."""
        return self.gate.is_leading()

    @property
    def observed_leader(self) -> str | None:
        """Who holds the Lease as far as this replica knows (None: nobody, or not known yet)."""
        return self.gate.observed_leader

    # ------------------------------------------------------------------ wiring

    def reporter_options(self) -> dict[str, Any]:
        """Keyword arguments for the Kubernetes status sink (``new_reporter``/``K8sReporter``)."""
        return {"gate": self.gate, "request_timeout": self.settings.status_write_timeout}

    def tap(self, reporter: Reporter) -> Reporter:
        """``reporter``, also showing each status to the Event recorder (if Events are on)."""
        return reporter if self.events is None else StatusTap(reporter, self.events.observe)

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(leading)`` on every leadership change (subscribe before :meth:`start`)."""
        self._subscribers.append(callback)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the Event recorder, then the elector."""
        if self._started or self._stopped:
            return
        self._started = True
        if self.events is not None:
            self.events.start()
        self.elector.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Graceful stop: Events stop, then the Lease is released; True if it was released in time."""
        if self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout
        try:
            self._stop_events(timeout * _EVENTS_SHARE)
            return self.elector.release(max(deadline - time.monotonic(), 0.1))
        finally:
            self._close()

    def kill(self, timeout: float = 5.0) -> None:
        """Stop everything without releasing, as a SIGKILL would: the Lease expires on its own."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.elector.abandon(timeout)
            self._stop_events(timeout)
        finally:
            self._close()

    def _changed(self, leading: bool) -> None:
        if self.events is not None:
            self.events.leadership(leading)
        for callback in self._subscribers:
            try:
                callback(leading)
            except Exception:
                log.exception("%r: leadership subscriber failed", self)

    def _stop_events(self, timeout: float) -> None:
        if self.events is not None:
            self.events.stop(timeout)

    def _close(self) -> None:
        if self._owns_client:
            self._api_client.close()  # type: ignore[no-untyped-call]


def resolve(
    reporter: Reporter | None,
    leader_election: LeaderElection | Leadership | None,
    env: Mapping[str, str] | None = None,
) -> tuple[Reporter, Leadership | None]:
    """The status sink and the leadership ``Runtime.start`` runs with.

    * a :class:`Leadership` is used as given (a given ``reporter`` must consult its gate);
    * with no ``reporter``, the environment decides (:meth:`Leadership.from_env`, with
      ``leader_election`` as the settings if given) and the sink is built with the gate;
    * a ``reporter`` with an enabled :class:`LeaderElection` is refused: nothing could
      make that sink consult the election.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if isinstance(leader_election, Leadership):
        if reporter is None:
            reporter = new_reporter(environ, **leader_election.reporter_options())
        return reporter, leader_election
    if reporter is not None:
        if leader_election is not None and leader_election.enabled:
            raise ValidationError(
                "leader_election",
                "a LeaderElection with your own reporter cannot gate it: pass a Leadership (and build the "
                "K8sReporter with leadership.reporter_options()), or let the runtime build the reporter",
            )
        return reporter, None
    leadership = Leadership.from_env(environ, leader_election)
    try:
        reporter = new_reporter(environ, **(leadership.reporter_options() if leadership is not None else {}))
    except BaseException:
        if leadership is not None:
            leadership.stop(0.0)
        raise
    return reporter, leadership
