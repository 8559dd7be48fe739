"""The leadership gate, the ``LeaderElection`` settings and how the runtime decides to elect.

Pure: a manual clock for the gate, explicit environments for the settings; ``resolve``
with an environment outside Kubernetes mode touches no cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vmcp_actors.actorkit.timers import ManualClock
from vmcp_actors.cli import render_table
from vmcp_actors.errors import ValidationError
from vmcp_actors.leadership.election import (
    Create,
    LeaseObserved,
    StartedLeading,
    Tick,
    WriteSucceeded,
    initial_state,
    transition,
)
from vmcp_actors.leadership.election import Now as ElectionNow
from vmcp_actors.leadership.gate import ElectionGate
from vmcp_actors.leadership.service import StatusTap, resolve
from vmcp_actors.leadership.settings import ENV_LEADER_ELECTION, LeaderElection, parse_switch
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.sinks import LoggingReporter, NoOpReporter


def leading_gate(clock: ManualClock) -> ElectionGate:
    """A gate published by an elector that created the Lease at the clock's current time."""
    config = LeaderElection(lease_duration=3, renew_deadline=2, retry_period=0.5).elector_config(
        "demo", "team-a", identity="pod-a_1"
    )
    now = ElectionNow(clock.monotonic(), clock.now())
    state, _ = transition(initial_state(config), Tick(now))
    state, effects = transition(state, LeaseObserved(None, None, now))
    (create,) = [e for e in effects if isinstance(e, Create)]
    state, effects = transition(state, WriteSucceeded(create.attempt, create.record, "1", now))
    assert any(isinstance(e, StartedLeading) for e in effects)
    gate = ElectionGate(clock.monotonic)
    gate.publish(state, 1)
    return gate


def test_the_gate_closes_at_the_renew_deadline_by_its_own_clock() -> None:
    clock = ManualClock()
    gate = leading_gate(clock)
    assert gate.is_leading()
    assert gate.leading_term() == 1
    clock.advance(1.99)
    assert gate.is_leading()
    clock.advance(0.01)  # no new state published: the deadline alone closes it
    assert not gate.is_leading()
    assert gate.leading_term() is None
    assert gate.observed_leader == "pod-a_1"


def test_a_closed_gate_never_leads_and_keeps_its_term() -> None:
    clock = ManualClock()
    gate = leading_gate(clock)
    gate.close()
    assert not gate.is_leading()
    assert gate.view.term == 1
    assert ElectionGate(clock.monotonic).leading_term() is None  # nothing published yet


def test_settings_defaults_are_client_go_and_env_turns_election_off() -> None:
    settings = LeaderElection.from_env({})
    assert settings.enabled
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15, 10, 2)
    assert settings.effective_request_timeout == 2
    assert settings.status_write_timeout == 5
    assert not LeaderElection.from_env({ENV_LEADER_ELECTION: "false"}).enabled
    assert not LeaderElection.from_env({ENV_LEADER_ELECTION: " Off "}).enabled
    assert LeaderElection.from_env({ENV_LEADER_ELECTION: "1"}).enabled
    with pytest.raises(ValidationError) as err:
        parse_switch(ENV_LEADER_ELECTION, "maybe", True)
    assert err.value.field == ENV_LEADER_ELECTION


def test_identity_is_pod_name_or_hostname_plus_suffix() -> None:
    settings = LeaderElection()
    assert settings.resolve_identity({"POD_NAME": "vmcp-7f9c-abcde"}, "host", "3f2a") == "vmcp-7f9c-abcde_3f2a"
    assert settings.resolve_identity({}, "host", "3f2a") == "host_3f2a"
    assert LeaderElection(identity="fixed").resolve_identity({"POD_NAME": "p"}, "h", "s") == "fixed"
    with pytest.raises(ValidationError) as err:
        settings.resolve_identity({}, "", "s")
    assert err.value.field == "leader_election.identity"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lease_duration": 2.5}, "leader_election.lease_duration"),
        ({"renew_deadline": 20}, "leader_election.renew_deadline"),
        ({"retry_period": 9}, "leader_election.retry_period"),
        ({"request_timeout": 11}, "leader_election.request_timeout"),
        ({"identity": " x"}, "leader_election.identity"),
    ],
)
def test_invalid_settings_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        LeaderElection(**changes)  # type: ignore[arg-type]
    assert err.value.field == field


def test_outside_kubernetes_mode_nothing_is_elected() -> None:
    reporter, leadership = resolve(None, None, env={})
    assert isinstance(reporter, LoggingReporter)
    assert leadership is None
    reporter, leadership = resolve(None, LeaderElection(), env={"VMCP_NAME": "x"})
    assert leadership is None


def test_a_custom_reporter_is_not_combined_with_bare_settings() -> None:
    sink = NoOpReporter()
    assert resolve(sink, None, env={}) == (sink, None)
    assert resolve(sink, LeaderElection(enabled=False), env={}) == (sink, None)
    with pytest.raises(ValidationError) as err:
        resolve(sink, LeaderElection(), env={})
    assert err.value.field == "leader_election"


def test_the_tap_forwards_then_shows_each_status() -> None:
    seen: list[str] = []

    class Sink(NoOpReporter):
        def report_status(self, status: Status | None) -> None:
            seen.append(f"sink {status.phase if status else None}")

    tap = StatusTap(Sink(), lambda status: seen.append(f"observe {status.phase}"))
    tap.report_status(Status(phase=Phase.READY))
    tap.report_status(None)
    assert seen == ["sink Ready", "observe Ready", "sink None"]


def test_the_table_says_whether_this_replica_leads() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert "LEADER" not in render_table(None, {}, now)  # no leader election
    assert "LEADER: this replica writes the status" in render_table(None, {}, now, leading=True)
    assert "LEADER: another replica (following)" in render_table(None, {}, now, leading=False)
