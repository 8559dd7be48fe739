"""``HealthActor``: probes backends, folds results and lifecycle events, reports status.

It is the shell around :mod:`vmcp_actors.health.rules` (toolhive's per-backend rules) and
:mod:`vmcp_actors.health.status_builder` (phase, conditions, messages).  Two things differ from
toolhive on purpose:

* **Event-driven.**  A status goes to the reporter as soon as any backend's health or
  lifecycle changes (toolhive waits for its next 30 s tick), and lifecycle events count
  at once: a backend whose session is gone is unhealthy now, not after three probes.
* **Re-asserted.**  Every ``status_interval`` the current status is reported again, so a
  status another writer overwrote is repaired (the reporter skips it if nothing changed
  and nothing needs repairing).

Probes are scheduled per backend through the :class:`~vmcp_actors.actorkit.timers.Scheduler`; a
backend's next probe is scheduled only when its previous one has answered, so probes for
one backend never overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, Mailbox, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, Timer
from vmcp_actors.backend.actor import BackendEvent, ProbeBackend, ProbeOutcome
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import State
from vmcp_actors.backend.routes import CallFailed
from vmcp_actors.health.rules import (
    BackendHealthState,
    HealthConfig,
    LifecycleSignal,
    ProbeFailureKind,
    ProbeResult,
    apply_lifecycle,
    apply_probe,
    should_probe,
)
from vmcp_actors.health.status_builder import BackendView, build_status
from vmcp_actors.model.status import BackendHealth, Status
from vmcp_actors.reporting.base import Reporter

__all__ = [
    "AddBackend",
    "HealthHook",
    "BackendGaveUp",
    "HealthActor",
    "Refresh",
    "RemoveBackend",
    "StatusCell",
    "lifecycle_signal",
    "probe_result",
]

log = logging.getLogger(__name__)

#: The toolhive default for statusReportingInterval.
DEFAULT_STATUS_INTERVAL = 30.0

HealthHook = Callable[[Mapping[str, BackendHealth]], None]
"""Told every backend's health (observed ones only) whenever it changes; must return at once."""


class StatusCell:
    """The latest status built, readable from any thread without waiting."""

    __slots__ = ("value",)

    def __init__(self, value: Status | None = None) -> None:
        self.value = value


@attrs.frozen
class AddBackend:
    """Track a backend; ``ref`` is the actor that answers its probes."""

    view: BackendView
    ref: Mailbox = attrs.field(eq=False)
    has_outgoing_auth: bool = False
    state: State | None = None


@attrs.frozen
class RemoveBackend:
    name: str


@attrs.frozen
class BackendGaveUp:
    """The supervisor stopped restarting this backend's actor: count it as failed."""

    name: str
    reason: str


@attrs.frozen
class ReplaceBackendRef:
    """The supervisor restarted the backend's actor: probe the new one."""

    name: str
    ref: Mailbox = attrs.field(eq=False)


@attrs.frozen
class _ProbeDue:
    name: str
    token: int


@attrs.frozen
class _Reassert:
    """The status interval has passed: report the status again."""


@attrs.frozen
class _InitialWaitOver:
    """Stop waiting for backends that have not reported since startup."""


@attrs.frozen
class Refresh:
    """Build and report the status now if it changed."""


@attrs.frozen
class BuildFinalStatus:
    """Answered (via ``ask``) with the status built now, which is also reported."""


def _observed(state: BackendHealthState | None) -> bool:
    return state is not None and state.observed


def lifecycle_signal(state: State) -> LifecycleSignal | None:
    """How a lifecycle state reads for health: ``None`` means it says nothing new."""
    if state is State.STARTING:
        return LifecycleSignal.STARTING
    if state.active:
        return LifecycleSignal.CONNECTED
    if state is State.AUTH_REQUIRED:
        return LifecycleSignal.AUTH_REQUIRED
    if state.session_gone or state is State.STOPPING:
        return LifecycleSignal.SESSION_LOST
    return None


_PROBE_KIND = {
    FailureKind.AUTH_REQUIRED: ProbeFailureKind.AUTH,
    FailureKind.TIMEOUT: ProbeFailureKind.TIMEOUT,
    FailureKind.TRANSIENT: ProbeFailureKind.CONNECTION,
    FailureKind.SESSION_LOST: ProbeFailureKind.CONNECTION,
}


def probe_result(outcome: ProbeOutcome) -> ProbeResult:
    """Translate a backend's ping outcome into the health rules' vocabulary."""
    if outcome.ok:
        return ProbeResult.success(outcome.latency or 0.0)
    failure = outcome.failure or Failure(FailureKind.SESSION_LOST, outcome.skipped or "probe could not run")
    kind = _PROBE_KIND.get(failure.kind, ProbeFailureKind.OTHER)
    if failure.http_status in (401, 403):
        kind = ProbeFailureKind.AUTH
    return ProbeResult.failed(kind, failure.message, outcome.latency or 0.0)


@attrs.frozen
class _Tracked:
    view: BackendView
    ref: Mailbox = attrs.field(eq=False)
    has_outgoing_auth: bool
    active: bool = False
    probing: bool = False
    token: int = 0
    probe_started: float | None = None


class HealthActor(GuardedActor):
    """Owns every backend's health state and the status built from it."""

    def __init__(
        self,
        reporter: Reporter,
        *,
        scheduler: Scheduler,
        config: HealthConfig | None = None,
        status_interval: float = DEFAULT_STATUS_INTERVAL,
        initial_wait: float = 0.0,
        cell: StatusCell | None = None,
        states: Mapping[str, BackendHealthState] | None = None,
        on_crash: CrashHandler | None = None,
        on_health: HealthHook | None = None,
    ) -> None:
        super().__init__("health monitor", on_crash)
        self._on_health = on_health
        self._published_health: Mapping[str, BackendHealth] | None = None
        self._reporter = reporter
        self._scheduler = scheduler
        self._config = config or HealthConfig()
        self._status_interval = status_interval
        self.cell = cell or StatusCell()
        self._tracked: dict[str, _Tracked] = {}
        # Health states survive a restart of this actor: the supervisor hands over the
        # dead actor's (immutable) states, so no backend starts over from "unknown".
        self.states: dict[str, BackendHealthState] = dict(states or {})
        self._reassert_timer: Timer | None = None
        self._probe_timers: dict[str, Timer] = {}
        # toolhive waits for the initial health checks before its first report, so a
        # vMCP never claims "All 1 backend healthy" while its second is still starting.
        # Event-driven, we do the same: until every backend added at startup has data
        # (or ``initial_wait`` has passed), the status stays Pending.
        self._initial_wait = initial_wait
        self._starting_up = not states
        self._awaiting: set[str] = set()

    def on_start(self) -> None:
        # No status yet: the backends are being added.  The first one comes with the
        # first AddBackend, or with Refresh when the runtime has no backends at all.
        self._schedule_reassert()

    def on_stop(self) -> None:
        for timer in [self._reassert_timer, *self._probe_timers.values()]:
            if timer is not None:
                timer.cancel()

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> Any:
        if isinstance(message, BackendEvent):
            self._on_backend_event(message)
        elif isinstance(message, ProbeOutcome):
            self._on_probe_outcome(message)
        elif isinstance(message, CallFailed):
            self._on_call_failed(message)
        elif isinstance(message, _ProbeDue):
            self._on_probe_due(message)
        elif isinstance(message, AddBackend):
            self._add(message)
        elif isinstance(message, RemoveBackend):
            self._remove(message.name)
        elif isinstance(message, ReplaceBackendRef):
            tracked = self._tracked.get(message.name)
            if tracked is not None:
                self._tracked[message.name] = attrs.evolve(tracked, ref=message.ref, probing=False)
        elif isinstance(message, BackendGaveUp):
            self._fold(message.name, LifecycleSignal.SESSION_LOST, message.reason)
        elif isinstance(message, _Reassert):
            self._schedule_reassert()
            self._refresh(force=True)
        elif isinstance(message, Refresh):
            if self._starting_up:
                self._starting_up = False
                me = self.actor_ref
                self._scheduler.call_later(self._initial_wait, lambda: tell_quietly(me, _InitialWaitOver()))
            self._refresh()
        elif isinstance(message, _InitialWaitOver):
            if self._awaiting:
                log.warning("no health data yet for %s; reporting without it", ", ".join(sorted(self._awaiting)))
                self._awaiting.clear()
                self._refresh()
        elif isinstance(message, BuildFinalStatus):
            return self._refresh(force=True)
        else:
            log.warning("health monitor ignored unexpected message %r", message)
        return None

    # ------------------------------------------------------------------ backends

    def _add(self, message: AddBackend) -> None:
        name = message.view.name
        self._tracked[name] = _Tracked(message.view, message.ref, message.has_outgoing_auth)
        if self._starting_up:
            self._awaiting.add(name)
        if message.state is not None:
            self._apply_state(name, message.state, "")
        self._refresh()

    def _remove(self, name: str) -> None:
        self._awaiting.discard(name)
        self._tracked.pop(name, None)
        self.states.pop(name, None)
        timer = self._probe_timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        self._refresh()

    def _on_backend_event(self, event: BackendEvent) -> None:
        if event.name not in self._tracked:
            return
        self._apply_state(event.name, event.change.new_state, event.change.error)
        self._refresh()

    def _apply_state(self, name: str, state: State, error: str) -> None:
        tracked = self._tracked[name]
        was_active = tracked.active
        self._tracked[name] = tracked = attrs.evolve(tracked, active=state.active)
        signal = lifecycle_signal(state)
        if signal is not None:
            self._fold(name, signal, error, refresh=False)
        if state.active and not was_active and not tracked.probing:
            self._probe_now(name)  # a fresh session is checked at once (latency, liveness)

    def _fold(self, name: str, signal: LifecycleSignal, message: str, *, refresh: bool = True) -> None:
        if name not in self._tracked:
            return
        now = self._scheduler.clock.now()
        self.states[name] = apply_lifecycle(self.states.get(name), signal, now, message)
        if refresh:
            self._refresh()

    # ------------------------------------------------------------------ probes

    def _probe_now(self, name: str) -> None:
        tracked = self._tracked[name]
        if not tracked.active:
            self._schedule_probe(name)  # no session: lifecycle events speak for it
            return
        allowed, state = should_probe(self.states.get(name), self._config, self._scheduler.clock.monotonic())
        if state is not None:
            self.states[name] = state
        if not allowed:
            self._schedule_probe(name)  # circuit open: probes skipped, state frozen
            return
        token = tracked.token + 1
        started = self._scheduler.clock.monotonic()
        self._tracked[name] = attrs.evolve(tracked, probing=True, token=token, probe_started=started)
        if not tell_quietly(tracked.ref, ProbeBackend(self.actor_ref, token)):
            self._on_probe_outcome(ProbeOutcome(name, token, ok=False, skipped="backend actor is not running"))

    def _on_probe_due(self, message: _ProbeDue) -> None:
        tracked = self._tracked.get(message.name)
        if tracked is None or tracked.probing or message.token != tracked.token:
            return
        self._probe_now(message.name)

    def _on_probe_outcome(self, outcome: ProbeOutcome) -> None:
        tracked = self._tracked.get(outcome.name)
        if tracked is None or outcome.token != tracked.token:
            return
        self._tracked[outcome.name] = attrs.evolve(tracked, probing=False)
        clock = self._scheduler.clock
        self.states[outcome.name] = apply_probe(
            self.states.get(outcome.name),
            probe_result(outcome),
            clock.now(),
            clock.monotonic(),
            self._config,
            tracked.has_outgoing_auth,
        )
        self._schedule_probe(outcome.name)
        self._refresh()

    def _on_call_failed(self, message: CallFailed) -> None:
        """Passive health: a request that failed in transport or timed out counts like a failed probe, now."""
        tracked = self._tracked.get(message.backend)
        if tracked is None or not tracked.active:
            return
        clock = self._scheduler.clock
        outcome = ProbeOutcome(message.backend, tracked.token, ok=False, failure=message.failure)
        self.states[message.backend] = apply_probe(
            self.states.get(message.backend),
            probe_result(outcome),
            clock.now(),
            clock.monotonic(),
            self._config,
            tracked.has_outgoing_auth,
        )
        self._refresh()

    def _schedule_probe(self, name: str) -> None:
        """Next probe one interval after the previous one *started* (toolhive's ticker),
        so a change is seen within one interval however long the last probe took."""
        tracked = self._tracked[name]
        token = tracked.token + 1
        self._tracked[name] = attrs.evolve(tracked, token=token, probe_started=None)
        old = self._probe_timers.get(name)
        if old is not None:
            old.cancel()
        delay = self._config.check_interval
        if tracked.probe_started is not None:
            delay = max(tracked.probe_started + delay - self._scheduler.clock.monotonic(), 0.0)
        me = self.actor_ref
        self._probe_timers[name] = self._scheduler.call_later(delay, lambda: tell_quietly(me, _ProbeDue(name, token)))

    # ------------------------------------------------------------------ status

    def _schedule_reassert(self) -> None:
        me = self.actor_ref
        self._reassert_timer = self._scheduler.call_later(self._status_interval, lambda: tell_quietly(me, _Reassert()))

    def _refresh(self, *, force: bool = False) -> Status:
        self._awaiting = {name for name in self._awaiting if not _observed(self.states.get(name))}
        waiting = bool(self._awaiting)
        views = {
            name: attrs.evolve(t.view, state=None if waiting else self.states.get(name))
            for name, t in self._tracked.items()
        }
        self._publish_health()
        previous = self.cell.value
        status = build_status(views, None, self._scheduler.clock.now(), previous=previous)
        if force or not status.same_content(previous):
            self.cell.value = status
            if previous is None or previous.phase is not status.phase:
                log.info("vmcp phase=%s message=%r", status.phase.value, status.message)
            self._reporter.report_status(status)
        return self.cell.value or status

    def _publish_health(self) -> None:
        if self._on_health is None:
            return
        health = {name: state.status for name, state in self.states.items() if name in self._tracked and state.observed}
        if health != self._published_health:
            self._published_health = health
            self._on_health(health)
