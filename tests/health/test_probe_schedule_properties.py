"""Probe tokens and the initial wait, against a model of the health actor's use of them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import names
from vmcp_actors.health.probe_schedule import (
    NO_PROBE_TIMEOUT,
    ProbeSchedule,
    StartupGate,
    initial_wait,
    probe_timeout,
)

INTERVAL = 30.0
seconds = st.floats(min_value=0.0, max_value=120.0, allow_nan=False)

# One step of a backend's probe chain, as the health actor meets them.
steps = st.one_of(
    st.tuples(st.just("probe"), seconds),  # a probe goes out (a due timer, or a fresh session)
    st.tuples(st.just("answer"), st.integers(min_value=0, max_value=40)),  # an answer carrying some token
    st.tuples(st.just("timer"), st.integers(min_value=0, max_value=40)),  # a timer carrying some token fires
    st.tuples(st.just("schedule"), seconds),  # the next probe is scheduled
    st.tuples(st.just("replaced"), st.just(0)),  # the backend actor was replaced mid-probe
)


@given(st.lists(steps, max_size=40))
def test_only_the_latest_token_counts_and_probes_never_overlap(ops: list[tuple[str, float]]) -> None:
    schedule = ProbeSchedule()
    issued = [0]  # every token handed out, in order
    mono = 0.0
    for op, value in ops:
        before = schedule
        if op == "probe":
            mono += value
            schedule = schedule.begin(mono)
            issued.append(schedule.token)
            assert schedule.probing
            assert schedule.started == mono
        elif op == "answer":
            token = int(value)
            assert schedule.is_current(token) == (token == issued[-1])
            if schedule.is_current(token):
                schedule = schedule.answered()
        elif op == "timer":
            token = int(value)
            assert schedule.is_due(token) == (token == issued[-1] and not schedule.probing)
        elif op == "schedule":
            mono += value
            schedule, delay = schedule.next_probe(mono, INTERVAL)
            issued.append(schedule.token)
            assert 0.0 <= delay <= INTERVAL
            assert not schedule.probing
        else:
            schedule = schedule.answered()
        assert schedule.token == issued[-1]
        assert schedule.token >= before.token
        if schedule.probing:  # while a probe is out, no timer may start another
            assert not any(schedule.is_due(token) for token in issued)
        # a superseded token never counts again
        assert not any(schedule.is_current(token) for token in issued[:-1])


@given(seconds, seconds)
def test_the_next_probe_is_due_one_interval_after_the_last_one_started(started: float, took: float) -> None:
    probing = ProbeSchedule().begin(started)
    schedule, delay = probing.answered().next_probe(started + took, INTERVAL)
    assert delay == pytest.approx(max(INTERVAL - took, 0.0), abs=1e-9)
    assert schedule.started is None
    assert schedule.is_due(schedule.token)
    _, fresh_delay = schedule.next_probe(started + took, INTERVAL)
    assert fresh_delay == INTERVAL  # no probe started since: a whole interval


gate_steps = st.one_of(
    st.tuples(st.just("add"), names),
    st.tuples(st.just("remove"), names),
    st.tuples(st.just("open"), st.just("")),
    st.tuples(st.just("starting"), names),  # the backend announced it is starting (no result yet)
    st.tuples(st.just("data"), names),  # a result: connected, failed, needs auth
    st.tuples(st.just("expire"), st.just("")),  # the initial-wait timer fired, at any point
)


@given(st.booleans(), st.lists(gate_steps, max_size=40))
def test_pending_holds_until_every_startup_backend_that_is_starting_has_a_result(
    restored: bool, ops: list[tuple[str, str]]
) -> None:
    """Bug: the timer released a backend still starting, so the status read Ready on the fast backends alone.

    The timer may fire at any point (on a loaded machine it fires before a slow
    backend's connect deadline); whatever the order, a startup backend that has
    announced itself is awaited until it has a result, and only the silent are released.
    """
    gate = StartupGate(open=restored)
    added_before_open: set[str] = set()
    announced: set[str] = set()
    with_data: set[str] = set()
    released: set[str] = set()  # silent at the moment the timer fired
    opened_count = 0
    for op, name in ops:
        if op == "add":
            if not gate.open:
                added_before_open.add(name)
            gate = gate.added(name)
        elif op == "remove":
            for known in (added_before_open, announced, with_data, released):
                known.discard(name)
            gate = gate.removed(name)
        elif op == "open":
            gate, starts = gate.opened()
            opened_count += starts
        elif op == "starting":
            announced.add(name)
        elif op == "data":
            announced.add(name)
            with_data.add(name)
        else:
            silent_now = {n for n in gate.awaiting if n not in announced}
            gate, silent = gate.expired(lambda n: n in announced)
            assert silent == silent_now  # exactly the never-heard-from are released, and named
            released |= silent
        gate = gate.observe(lambda n: n in with_data)
        expected = set() if restored else added_before_open - with_data - released
        assert gate.awaiting == expected
        # the bug's shape: a startup backend announced but without a result keeps the status Pending
        for starting in (added_before_open & announced) - with_data - released:
            assert not restored
            assert gate.waiting, starting
    assert opened_count <= (0 if restored else 1)  # the wait timer starts at most once


@given(st.lists(st.floats(min_value=0.0, max_value=600.0), max_size=8), st.floats(min_value=0.0, max_value=60.0))
def test_the_initial_wait_covers_the_slowest_connect_and_its_first_probe(connects: list[float], probe: float) -> None:
    wait = initial_wait(connects, probe)
    assert all(wait >= connect + probe for connect in connects)
    assert wait == (max(connects) if connects else 0.0) + probe


@given(st.floats(min_value=0.0, max_value=3600.0))
def test_a_zero_health_check_timeout_means_no_timeout(configured: float) -> None:
    timeout = probe_timeout(configured)
    assert timeout == (configured if configured > 0 else NO_PROBE_TIMEOUT)
    assert timeout > 0
