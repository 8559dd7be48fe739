"""``HealthActor``: probes backends, folds results and lifecycle events, reports status.

It is the shell around the pure health modules: :mod:`~vmcp_actors.health.rules`
(toolhive's per-backend rules), :mod:`~vmcp_actors.health.backend_signals` (what backends
report, in the rules' terms), :mod:`~vmcp_actors.health.probe_schedule` (probe tokens
and the initial wait) and :mod:`~vmcp_actors.health.status_builder` (phase, conditions,
messages).  Two things differ from toolhive on purpose:

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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, assert_never, get_args

import attrs

from vmcp_actors.actorkit.guard import CrashHandler, GuardedActor, Mailbox, tell_quietly
from vmcp_actors.actorkit.timers import Scheduler, Timer
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.backend.messages import BackendEvent, ProbeBackend, ProbeOutcome
from vmcp_actors.backend.routes import CallFailed
from vmcp_actors.config.failure_handling import DEFAULT_STATUS_REPORTING_INTERVAL
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.health.backend_signals import lifecycle_signal, probe_result
from vmcp_actors.health.messages import (
    AddBackend,
    BackendGaveUp,
    BuildFinalStatus,
    InitialWaitOver,
    ProbeDue,
    ProbeObserved,
    Reassert,
    Refresh,
    RemoveBackend,
    ReplaceBackendRef,
)
from vmcp_actors.health.probe_schedule import ProbeSchedule, StartupGate
from vmcp_actors.health.rules import apply_lifecycle, apply_probe, record_revision, should_probe
from vmcp_actors.health.state import BackendHealthState, LifecycleSignal
from vmcp_actors.health.status_builder import BackendView, build_status, stopped_status
from vmcp_actors.health.status_cell import StatusCell
from vmcp_actors.model.status import BackendHealth, Status
from vmcp_actors.reporting.protocol import Reporter

__all__ = ["HealthActor", "HealthHook"]

log = logging.getLogger(__name__)

#: Every message the health actor handles.
HealthMessage = (
    BackendEvent
    | ProbeOutcome
    | CallFailed
    | ProbeDue
    | AddBackend
    | RemoveBackend
    | ReplaceBackendRef
    | BackendGaveUp
    | Reassert
    | Refresh
    | InitialWaitOver
    | BuildFinalStatus
)
_MESSAGE_TYPES: Final = get_args(HealthMessage)

HealthHook = Callable[[Mapping[str, BackendHealth]], None]
"""Told every backend's health (observed ones only) whenever it changes; must return at once."""


@attrs.frozen
class _Tracked:
    view: BackendView
    ref: Mailbox = attrs.field(eq=False)
    has_outgoing_auth: bool
    active: bool = False
    probes: ProbeSchedule = attrs.field(factory=ProbeSchedule)


class HealthActor(GuardedActor):
    """Owns every backend's health state and the status built from it."""

    def __init__(
        self,
        reporter: Reporter,
        *,
        scheduler: Scheduler,
        config: HealthConfig | None = None,
        status_interval: float = DEFAULT_STATUS_REPORTING_INTERVAL,
        initial_wait: float = 0.0,
        cell: StatusCell | None = None,
        states: Mapping[str, BackendHealthState] | None = None,
        on_crash: CrashHandler | None = None,
        observers: Sequence[Mailbox] = (),
        on_health: HealthHook | None = None,
    ) -> None:
        super().__init__("health monitor", on_crash)
        self._on_health = on_health  # the data plane: which backends are routable
        self._published_health: Mapping[str, BackendHealth] | None = None
        self._observers = tuple(observers)  # told each ProbeObserved (metrics)
        self._reporter = reporter
        self._scheduler = scheduler
        self._config = config or HealthConfig()
        self._status_interval = status_interval
        self._cell = cell or StatusCell()
        self._tracked: dict[str, _Tracked] = {}
        # Health states survive a restart of this actor: the supervisor hands over the
        # dead actor's (immutable) states, so no backend starts over from "unknown", and
        # the replacement does not wait for startup data again.
        self.states: dict[str, BackendHealthState] = dict(states or {})
        self._reassert_timer: Timer | None = None
        self._probe_timers: dict[str, Timer] = {}
        self._initial_wait = initial_wait
        self._gate = StartupGate(open=states is not None)

    def on_start(self) -> None:
        """Start the re-assert timer; the first status comes with the first backend or ``Refresh``."""
        self._schedule_reassert()

    def on_stop(self) -> None:
        """Cancel every timer, so none fires into a dead inbox."""
        for timer in [self._reassert_timer, *self._probe_timers.values()]:
            if timer is not None:
                timer.cancel()

    # ------------------------------------------------------------------ dispatch

    def handle(self, message: Any) -> Any:
        """Dispatch one message; only ``BuildFinalStatus`` has an answer."""
        if not isinstance(message, _MESSAGE_TYPES):
            log.warning("health monitor ignored unexpected message %r", message)
            return None
        return self._dispatch(message)

    def _dispatch(self, message: HealthMessage) -> Status | None:
        match message:
            case BackendEvent():
                self._on_backend_event(message)
            case ProbeOutcome():
                self._on_probe_outcome(message)
            case CallFailed():
                self._on_call_failed(message)
            case ProbeDue():
                self._on_probe_due(message)
            case AddBackend() | RemoveBackend() | ReplaceBackendRef():
                self._membership(message)
            case BackendGaveUp():
                self._fold(message.name, LifecycleSignal.SESSION_LOST, message.reason)
            case Reassert():
                self._schedule_reassert()
                self._refresh(force=True)
            case Refresh():
                self._on_refresh()
            case InitialWaitOver():
                self._on_initial_wait_over()
            case BuildFinalStatus():
                return self._final_status()
            case _:
                assert_never(message)
        return None

    # ------------------------------------------------------------------ backends

    def _membership(self, message: AddBackend | RemoveBackend | ReplaceBackendRef) -> None:
        match message:
            case AddBackend():
                self._add(message)
            case RemoveBackend():
                self._remove(message.name)
            case ReplaceBackendRef():
                self._replace_ref(message)
            case _:
                assert_never(message)

    def _add(self, message: AddBackend) -> None:
        name = message.view.name
        self._tracked[name] = _Tracked(message.view, message.ref, message.has_outgoing_auth)
        self._gate = self._gate.added(name)
        if message.state is not None:
            self._apply_state(name, message.state, "")
        self._refresh()

    def _remove(self, name: str) -> None:
        self._gate = self._gate.removed(name)
        self._tracked.pop(name, None)
        self.states.pop(name, None)
        timer = self._probe_timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        self._refresh()

    def _replace_ref(self, message: ReplaceBackendRef) -> None:
        tracked = self._tracked.get(message.name)
        if tracked is not None:
            # The probe the dead actor held will never be answered.
            self._tracked[message.name] = attrs.evolve(tracked, ref=message.ref, probes=tracked.probes.answered())

    def _on_backend_event(self, event: BackendEvent) -> None:
        if event.name not in self._tracked:
            return
        self._apply_state(event.name, event.change.new_state, event.change.error)
        state = self.states.get(event.name)
        if event.snapshot.mcp_revision and state is not None:
            # The revision the backend's session negotiated, for discoveredBackends[].mcpRevision.
            self.states[event.name] = record_revision(state, event.snapshot.mcp_revision)
        self._refresh()

    def _apply_state(self, name: str, state: State, error: str) -> None:
        tracked = self._tracked[name]
        was_active = tracked.active
        self._tracked[name] = tracked = attrs.evolve(tracked, active=state.active)
        signal = lifecycle_signal(state)
        if signal is not None:
            # A session that died (not one stopped on request) counts as a failure.
            self._fold(name, signal, error, refresh=False, failed=state in (State.FAILED, State.UNREACHABLE))
        if state.active and not was_active and not tracked.probes.probing:
            self._probe_now(name)  # a fresh session is checked at once (latency, liveness)

    def _fold(
        self, name: str, signal: LifecycleSignal, message: str, *, refresh: bool = True, failed: bool = False
    ) -> None:
        if name not in self._tracked:
            return
        now = self._scheduler.clock.now()
        self.states[name] = apply_lifecycle(self.states.get(name), signal, now, message, failed=failed)
        if refresh:
            self._refresh()

    # ------------------------------------------------------------------ probes

    def _probe_now(self, name: str) -> None:
        tracked = self._tracked[name]
        if not tracked.active:
            self._schedule_probe(name)  # no session: lifecycle events speak for it
            return
        mono = self._scheduler.clock.monotonic()
        allowed, state = should_probe(self.states.get(name), self._config, mono)
        if state is not None:
            self.states[name] = state
        if not allowed:
            self._schedule_probe(name)  # circuit open: probes skipped, state frozen
            return
        probes = tracked.probes.begin(mono)
        self._tracked[name] = attrs.evolve(tracked, probes=probes)
        if not tell_quietly(tracked.ref, ProbeBackend(self.actor_ref, probes.token)):
            self._on_probe_outcome(ProbeOutcome(name, probes.token, ok=False, skipped="backend actor is not running"))

    def _on_probe_due(self, message: ProbeDue) -> None:
        tracked = self._tracked.get(message.name)
        if tracked is not None and tracked.probes.is_due(message.token):
            self._probe_now(message.name)

    def _on_probe_outcome(self, outcome: ProbeOutcome) -> None:
        tracked = self._tracked.get(outcome.name)
        if tracked is None or not tracked.probes.is_current(outcome.token):
            return
        self._tell_observers(outcome, tracked.probes.started)
        self._tracked[outcome.name] = tracked = attrs.evolve(tracked, probes=tracked.probes.answered())
        if not tracked.active:
            # The session the probe ran on is gone, and the event saying so is already
            # folded in (a backend publishes its change before it answers the probe).
            # Folding the stale answer would overwrite what the lifecycle knows -- a
            # 401 that closed the session would read as a reachable server.
            self._schedule_probe(outcome.name)
            return
        self._fold_probe(outcome, tracked.has_outgoing_auth)
        self._schedule_probe(outcome.name)
        self._refresh()

    def _on_call_failed(self, message: CallFailed) -> None:
        """Passive health: a request that failed in transport or timed out counts like a failed probe, now."""
        tracked = self._tracked.get(message.backend)
        if tracked is None or not tracked.active:
            return
        outcome = ProbeOutcome(message.backend, tracked.probes.token, ok=False, failure=message.failure)
        self._fold_probe(outcome, tracked.has_outgoing_auth)
        self._refresh()

    def _fold_probe(self, outcome: ProbeOutcome, has_outgoing_auth: bool) -> None:
        """Fold a probe's outcome (or a failed call, which counts as one) into the backend's health."""
        clock = self._scheduler.clock
        self.states[outcome.name] = apply_probe(
            self.states.get(outcome.name),
            probe_result(outcome),
            clock.now(),
            clock.monotonic(),
            self._config,
            has_outgoing_auth,
        )

    def _tell_observers(self, outcome: ProbeOutcome, started: float | None) -> None:
        if not self._observers:
            return
        waited = None if outcome.skipped or started is None else max(self._scheduler.clock.monotonic() - started, 0.0)
        for observer in self._observers:
            tell_quietly(observer, ProbeObserved(outcome, waited))

    def _schedule_probe(self, name: str) -> None:
        tracked = self._tracked[name]
        probes, delay = tracked.probes.next_probe(self._scheduler.clock.monotonic(), self._config.check_interval)
        self._tracked[name] = attrs.evolve(tracked, probes=probes)
        old = self._probe_timers.get(name)
        if old is not None:
            old.cancel()
        me = self.actor_ref
        due = ProbeDue(name, probes.token)
        self._probe_timers[name] = self._scheduler.call_later(delay, lambda: tell_quietly(me, due))

    # ------------------------------------------------------------------ status

    def _on_refresh(self) -> None:
        self._gate, wait_starts = self._gate.opened()
        if wait_starts:
            me = self.actor_ref
            self._scheduler.call_later(self._initial_wait, lambda: tell_quietly(me, InitialWaitOver()))
        self._refresh()

    def _on_initial_wait_over(self) -> None:
        self._gate, silent = self._gate.expired(self._has_announced)
        if silent:
            log.warning("no health data yet for %s; reporting without it", ", ".join(sorted(silent)))
            self._refresh()

    def _schedule_reassert(self) -> None:
        me = self.actor_ref
        self._reassert_timer = self._scheduler.call_later(self._status_interval, lambda: tell_quietly(me, Reassert()))

    def _has_announced(self, name: str) -> bool:
        """Whether the backend has said anything (it is starting, at least)."""
        return name in self.states

    def _has_data(self, name: str) -> bool:
        state = self.states.get(name)
        return state is not None and state.observed

    def _final_status(self) -> Status:
        """After a graceful stop: Pending, Ready=False reason Stopped (``stopped_status``), reported."""
        status = stopped_status(self._cell.value, self._scheduler.clock.now())
        self._cell.value = status
        log.info("vmcp phase=%s message=%r", status.phase.value, status.message)
        self._reporter.report_status(status)
        return status

    def _refresh(self, *, force: bool = False) -> Status:
        self._gate = self._gate.observe(self._has_data)
        waiting = self._gate.waiting
        views = {
            name: attrs.evolve(t.view, state=None if waiting else self.states.get(name))
            for name, t in self._tracked.items()
        }
        self._publish_health()
        previous = self._cell.value
        status = build_status(views, None, self._scheduler.clock.now(), previous=previous)
        if force or not status.same_content(previous):
            self._cell.value = status
            if previous is None or previous.phase is not status.phase:
                log.info("vmcp phase=%s message=%r", status.phase.value, status.message)
            self._reporter.report_status(status)
        return self._cell.value or status

    def _publish_health(self) -> None:
        if self._on_health is None:
            return
        health = {name: state.status for name, state in self.states.items() if name in self._tracked and state.observed}
        if health != self._published_health:
            self._published_health = health
            self._on_health(health)
