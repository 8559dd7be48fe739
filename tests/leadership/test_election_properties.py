"""Leader election against a simulated API server: skewed clocks, a lossy network, outages.

The stateful test runs 2-3 electors, each with its own monotonic clock (any offset, a
rate within ``1 ± RHO`` of real time that may change at any moment) and its own wall
clock (offsets of up to ±30 s, so a rule that compared the remote ``renewTime`` with the
local clock would fail).  A reference API server holds one Lease with a resourceVersion
and applies writes by compare-and-swap; a watch fans every change out to the electors.
Messages are delayed, and while the network is lossy, delayed more and dropped; the API
server goes down; an elector is cut off, crashes, restarts under a new identity, or
stops gracefully.

Checked at every simulated instant at which anything happens:

* **Safety**: no two electors are ``is_leading`` at the same real time.  The bound
  assumed: clock rates within ``RHO`` = 5 % of real time (client-go assumes "a few
  percent"; the default config tolerates 20 %), offsets arbitrary.
* **Liveness**: once the API server is up, the network calm and some elector able to
  reach it, someone leads within ``liveness_bound()`` of the later of "nobody leads" and
  "calm began" -- a lease duration plus one (jittered) retry period and a request
  timeout, stretched by the slowest clock, plus the time for messages of the lossy
  period to drain.
* **Release**: an elector that observes a released Lease tries to take it at once, and
  in a calm network a released Lease has a new leader within a few message delays.
* Callbacks alternate (Started, Stopped, Started, ...), StoppedLeading precedes the
  Release it explains, no Tick is ever scheduled in the past, and every committed Lease
  counts holder changes in ``leaseTransitions``.

Deliberate bugs the machine was checked to catch: judging expiry by the remote
``renewTime`` against the local wall clock (two leaders, once clocks are 5+ s apart);
no stop at the renew deadline (two leaders, once the leader is cut off); restarting the
lease on every observation instead of every new version (liveness); a candidate that
waits for its next poll after seeing a release; StoppedLeading after the Release.

Example-based tests of each rule and of the config validation follow the machine.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vmcp_actors.leadership.election import (
    JITTER_FACTOR,
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    Create,
    Effect,
    ElectorState,
    Get,
    LeaderElectionConfig,
    LeaderElectionConfigError,
    LeaseObserved,
    LeaseRecord,
    Message,
    Now,
    Phase,
    Release,
    ReleaseRequested,
    ScheduleTick,
    StartedLeading,
    StoppedLeading,
    Tick,
    Update,
    WriteConflicted,
    WriteFailed,
    WriteSucceeded,
    finished,
    holder_identity,
    identity_base,
    initial_state,
    is_leading,
    lease_expires_at,
    lease_name,
    observed_leader,
    transition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: Clock rates stay within 1 ± RHO of real time.
RHO = 0.05
#: One-way message delay bound while the network is calm; while it is lossy, most
#: messages take up to LOSSY_DELAY and one in ten up to SLOW_DELAY (an overloaded server).
CALM_DELAY = 0.05
LOSSY_DELAY = 1.5
SLOW_DELAY = 6.0
#: Probability that a message is lost while the network is lossy.
DROP = 0.25
#: The shell's own HTTP timeout, when it reports a lost answer at all.
SHELL_TIMEOUT = (0.5, 3.0)
#: How late a timer may fire (local seconds).
TICK_LAG = 0.01
#: Request timeouts the simulation runs with: client-go's retry period, and one close to
#: the renew deadline (under which answers may arrive seconds after the request was sent).
REQUEST_TIMEOUTS = (RETRY_PERIOD, 8.0)
#: Everything sent during the lossy period has arrived (request + answer, or a shell timeout).
DRAIN = 2 * SLOW_DELAY + SHELL_TIMEOUT[1]
#: A calm network: the watch shows the release, the write goes out and comes back.
RELEASE_BOUND = 6 * CALM_DELAY + 2 * TICK_LAG


def liveness_bound(request_timeout: float) -> float:
    """Drain the lossy period; an unanswered write times out; a poll (jittered retry
    period) refreshes a stale view; the lease expires; all on the slowest clock; then
    the claim travels to the server and back."""
    local = request_timeout + RETRY_PERIOD * (1 + JITTER_FACTOR) + LEASE_DURATION + TICK_LAG
    return DRAIN + local / (1 - RHO) + 6 * CALM_DELAY


def config(identity: str, **timing: float) -> LeaderElectionConfig:
    return LeaderElectionConfig.for_vmcp("demo", "team-a", identity, **timing)


# --------------------------------------------------------------------------- the simulation


class ApiServer:
    """One Lease, a resourceVersion counter, compare-and-swap writes."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.up = True

    @property
    def resource_version(self) -> str | None:
        return None if self.record is None else str(self.version)

    def write(self, effect: Create | Update | Release) -> bool:
        """Apply ``effect`` if its precondition holds; False means a conflict."""
        if isinstance(effect, Create):
            if self.record is not None:
                return False
        elif self.record is None or effect.expected_resource_version != self.resource_version:
            return False
        old, new = self.record, effect.record
        if isinstance(effect, Release):
            assert new.released
            assert new.lease_duration_seconds == 1
            assert old is not None
            assert new.lease_transitions == old.lease_transitions
        elif old is None:
            assert new.lease_transitions == 0
        else:
            changed = new.holder_identity != old.holder_identity
            assert new.lease_transitions == old.lease_transitions + (1 if changed else 0)
            if not changed:
                assert new.acquire_time == old.acquire_time
        self.version += 1
        self.record = new
        return True


@dataclass
class Replica:
    index: int
    generation: int
    identity: str
    state: ElectorState
    rate: float
    mono: float
    wall_offset: float
    alive: bool = True
    isolated: bool = False
    tick_at: float | None = None
    leading: bool = False  # from the callbacks

    @property
    def candidate(self) -> bool:
        """Alive, reachable, and not stopping: able to lead."""
        return self.alive and not self.isolated and self.state.phase in (Phase.CANDIDATE, Phase.LEADER)


@dataclass(order=True)
class Pending:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Simulation:
    def __init__(
        self,
        n: int,
        seed: int,
        rates: list[float],
        offsets: list[float],
        monos: list[float],
        request_timeout: float = RETRY_PERIOD,
    ) -> None:
        self.rng = random.Random(seed)
        self.request_timeout = request_timeout
        self.liveness_bound = liveness_bound(request_timeout)
        self.server = ApiServer()
        self.t = 0.0
        self.calm = True
        self.queue: list[Pending] = []
        self.seq = itertools.count()
        self.replicas = [
            Replica(i, 0, f"pod-{i}_g0", self.initial(f"pod-{i}_g0"), rates[i], monos[i], offsets[i]) for i in range(n)
        ]
        self.leaderless_since: float | None = 0.0
        self.calm_since: float | None = 0.0
        self.candidates_since: float | None = 0.0
        self.release_committed_at: float | None = None
        self.longest_wait = 0.0
        for r in self.replicas:
            self.deliver(r, Tick(self.now(r)))

    def initial(self, identity: str) -> ElectorState:
        return initial_state(config(identity, request_timeout=self.request_timeout))

    # --- clocks and plumbing

    def now(self, r: Replica) -> Now:
        wall = T0 + timedelta(seconds=r.wall_offset + r.mono)
        return Now(r.mono, wall, self.rng.random())

    def advance_clocks(self, to: float) -> None:
        dt = to - self.t
        assert dt >= 0
        for r in self.replicas:
            r.mono += r.rate * dt
        self.t = to

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, Pending(self.t + delay, next(self.seq), action))

    def delay(self) -> float:
        if self.calm:
            return self.rng.uniform(0, CALM_DELAY)
        if self.rng.random() < 0.9:
            return self.rng.uniform(0, LOSSY_DELAY)
        return self.rng.uniform(LOSSY_DELAY, SLOW_DELAY)

    def lost(self) -> bool:
        return not self.calm and self.rng.random() < DROP

    def reachable(self, r: Replica, generation: int) -> bool:
        return r.alive and r.generation == generation and not r.isolated

    # --- running

    def run(self, seconds: float) -> None:
        end = self.t + seconds
        while True:
            next_at, tick_of = math.inf, None
            if self.queue:
                next_at = self.queue[0].at
            for r in self.replicas:
                if r.alive and r.tick_at is not None:
                    at = self.t + max(0.0, r.tick_at + TICK_LAG * self.rng.random() - r.mono) / r.rate
                    if at < next_at:
                        next_at, tick_of = at, r
            if next_at > end:
                self.advance_clocks(end)
                self.check()
                return
            self.advance_clocks(next_at)
            if tick_of is not None:
                assert tick_of.tick_at is not None
                tick_of.mono = max(tick_of.mono, tick_of.tick_at)  # no rounding below the due time
                tick_of.tick_at = None
                self.deliver(tick_of, Tick(self.now(tick_of)))
            else:
                heapq.heappop(self.queue).action()
            self.check()

    def deliver(self, r: Replica, message: Message) -> None:
        before = r.state
        r.state, effects = transition(before, message)
        self.check_effects(r, before, message, effects)
        for effect in effects:
            self.perform(r, effect)
        if finished(r.state):
            r.tick_at = None

    def deliver_later(self, r: Replica, make: Callable[[Now], Message], write_attempt: int | None = None) -> None:
        """Send a message to ``r`` over the network (lost if ``r`` is cut off or gone)."""
        generation = r.generation
        if self.lost():
            self.maybe_shell_timeout(r, write_attempt)
            return

        def arrive() -> None:
            if self.reachable(r, generation):
                self.deliver(r, make(self.now(r)))
            elif r.alive and r.generation == generation and write_attempt is not None and self.rng.random() < 0.5:
                self.deliver(r, WriteFailed(write_attempt, self.now(r), "connection reset"))

        self.schedule(self.delay(), arrive)

    def maybe_shell_timeout(self, r: Replica, attempt: int | None) -> None:
        """A lost write answer: sometimes the shell's HTTP timeout reports it, sometimes not."""
        if attempt is None or self.rng.random() < 0.5:
            return
        generation = r.generation

        def timeout() -> None:
            if r.alive and r.generation == generation:
                self.deliver(r, WriteFailed(attempt, self.now(r), "timeout"))

        self.schedule(self.rng.uniform(*SHELL_TIMEOUT), timeout)

    def perform(self, r: Replica, effect: Effect) -> None:
        if isinstance(effect, ScheduleTick):
            assert effect.at > r.mono, f"tick scheduled in the past: {effect.at} <= {r.mono}"
            r.tick_at = effect.at
        elif isinstance(effect, StartedLeading):
            assert not r.leading, "StartedLeading twice"
            r.leading = True
        elif isinstance(effect, StoppedLeading):
            assert r.leading, "StoppedLeading without StartedLeading"
            r.leading = False
        else:
            self.send(r, effect)

    def send(self, r: Replica, effect: Get | Create | Update | Release) -> None:
        attempt = None if isinstance(effect, Get) else effect.attempt
        if r.isolated or self.lost():
            self.maybe_shell_timeout(r, attempt)
            return

        def at_server() -> None:
            if isinstance(effect, Get):
                if self.server.up:
                    record, version = self.server.record, self.server.resource_version
                    self.deliver_later(r, lambda now: LeaseObserved(record, version, now))
                return
            assert attempt is not None
            if not self.server.up:
                self.deliver_later(r, lambda now: WriteFailed(attempt, now, "503"), attempt)
                return
            if not self.server.write(effect):
                self.deliver_later(r, lambda now: WriteConflicted(attempt, now), attempt)
                return
            record, version = effect.record, self.server.resource_version
            assert version is not None
            if isinstance(effect, Release):
                self.release_committed_at = self.t
            self.deliver_later(r, lambda now: WriteSucceeded(attempt, record, version, now), attempt)
            for other in self.replicas:  # the watch
                if other.alive and not other.isolated:
                    self.deliver_later(other, lambda now: LeaseObserved(record, version, now))

        self.schedule(self.delay(), at_server)

    # --- checks

    def check_effects(self, r: Replica, before: ElectorState, message: Message, effects: tuple[Effect, ...]) -> None:
        kinds = [type(e) for e in effects]
        if Release in kinds:
            release = kinds.index(Release)
            assert StoppedLeading not in kinds[release:], "StoppedLeading after the Release"
            assert not is_leading(r.state, r.mono)
        if isinstance(message, ReleaseRequested) and before.phase is Phase.LEADER:
            assert kinds
            assert kinds[0] is StoppedLeading
        assert kinds.count(ScheduleTick) <= 1
        if (
            isinstance(message, LeaseObserved)
            and message.record is not None
            and message.record.released
            and before.phase is Phase.CANDIDATE
            and before.write is None
        ):
            claims = [e for e in effects if isinstance(e, Update) and e.record.holder_identity == r.identity]
            assert claims, f"observed a released Lease but did not try to take it: {effects}"

    def check(self) -> None:
        leaders = [r for r in self.replicas if r.alive and is_leading(r.state, r.mono)]
        assert len(leaders) <= 1, f"two leaders at t={self.t}: {[r.identity for r in leaders]}"
        for r in leaders:
            assert r.leading, "is_leading without StartedLeading"
        if leaders:
            self.leaderless_since = None
            self.release_committed_at = None
        elif self.leaderless_since is None:
            self.leaderless_since = self.t
        candidates = any(r.candidate for r in self.replicas)
        if not candidates:
            self.candidates_since = None
        elif self.candidates_since is None:
            self.candidates_since = self.t
        if leaders or not candidates or self.calm_since is None or not self.server.up:
            return
        assert self.leaderless_since is not None
        assert self.candidates_since is not None
        quiet = max(self.leaderless_since, self.calm_since, self.candidates_since)
        waited = self.t - quiet
        self.longest_wait = max(self.longest_wait, waited)
        assert waited <= self.liveness_bound, f"nobody leads {waited:.2f}s after t={quiet:.2f}"
        released = self.release_committed_at
        if released is not None and self.calm_since <= released - DRAIN and self.candidates_since <= released:
            assert self.t - released <= RELEASE_BOUND, f"released at {released:.2f}, nobody took it by {self.t:.2f}"

    # --- faults

    def disturbed(self) -> None:
        """Something changed: the liveness clock starts again (if the world is calm at all)."""
        self.calm_since = self.t if self.calm and self.server.up else None


PAUSES = st.sampled_from([0.0, 0.3, 1.0, 3.0, 8.0, 20.0, 40.0])
REPLICA = st.integers(0, 2)


class ElectionMachine(RuleBasedStateMachine):
    sim: Simulation

    @initialize(
        n=st.integers(2, 3),
        seed=st.integers(0, 2**32 - 1),
        rates=st.lists(st.floats(1 - RHO, 1 + RHO), min_size=3, max_size=3),
        offsets=st.lists(st.floats(-30.0, 30.0), min_size=3, max_size=3),
        monos=st.lists(st.floats(0.0, 1e6), min_size=3, max_size=3),
        request_timeout=st.sampled_from(REQUEST_TIMEOUTS),
    )
    def setup(
        self, n: int, seed: int, rates: list[float], offsets: list[float], monos: list[float], request_timeout: float
    ) -> None:
        self.sim = Simulation(n, seed, rates, offsets, monos, request_timeout)

    def replica(self, i: int) -> Replica:
        return self.sim.replicas[i % len(self.sim.replicas)]

    # Every fault is followed by some time passing (``then``), so runs spend most of their
    # steps living with the fault rather than stacking faults in one instant.

    @rule(seconds=PAUSES)
    def time_passes(self, seconds: float) -> None:
        self.sim.run(seconds)

    @rule(i=REPLICA, then=PAUSES)
    def crash(self, i: int, then: float) -> None:
        r = self.replica(i)
        r.alive, r.tick_at, r.leading = False, None, False
        self.sim.disturbed()
        self.sim.run(then)

    @rule(i=REPLICA, then=PAUSES)
    def restart(self, i: int, then: float) -> None:
        """A new process: a new identity suffix, an empty state."""
        r = self.replica(i)
        if not r.alive or finished(r.state):
            r.generation += 1
            r.identity = f"pod-{r.index}_g{r.generation}"
            r.state = self.sim.initial(r.identity)
            r.alive, r.tick_at, r.leading = True, None, False
            self.sim.disturbed()
            self.sim.deliver(r, Tick(self.sim.now(r)))
        self.sim.run(then)

    @rule(i=REPLICA, then=PAUSES)
    def graceful_stop(self, i: int, then: float) -> None:
        r = self.replica(i)
        if r.alive:  # not a fault: the others must take over at once, so the clocks keep running
            self.sim.deliver(r, ReleaseRequested(self.sim.now(r)))
        self.sim.run(then)

    @rule(up=st.booleans(), then=PAUSES)
    def api_server(self, up: bool, then: float) -> None:
        self.sim.server.up = up
        self.sim.disturbed()
        self.sim.run(then)

    @rule(calm=st.booleans(), then=PAUSES)
    def network(self, calm: bool, then: float) -> None:
        self.sim.calm = calm
        self.sim.disturbed()
        self.sim.run(then)

    @rule(i=REPLICA, isolated=st.booleans(), then=PAUSES)
    def cut_off(self, i: int, isolated: bool, then: float) -> None:
        self.replica(i).isolated = isolated
        self.sim.disturbed()
        self.sim.run(then)

    @rule(i=REPLICA, rate=st.floats(1 - RHO, 1 + RHO), then=PAUSES)
    def clock_rate_changes(self, i: int, rate: float, then: float) -> None:
        self.replica(i).rate = rate
        self.sim.run(then)

    @precondition(lambda self: hasattr(self, "sim"))
    @invariant()
    def at_most_one_leader(self) -> None:
        self.sim.check()


ElectionMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestElection = ElectionMachine.TestCase


def test_the_simulation_reaches_leadership_and_handovers() -> None:
    """The machine is not vacuous: a plain run elects, fails over after a crash, and a
    graceful stop hands over within a few message delays."""
    sim = Simulation(3, 7, [1.0, 1.03, 0.97], [0.0, 20.0, -20.0], [5.0, 1000.0, 0.0])
    sim.run(5)
    leaders = [r for r in sim.replicas if is_leading(r.state, r.mono)]
    assert len(leaders) == 1
    first = leaders[0]
    first.alive = False
    sim.disturbed()
    sim.run(sim.liveness_bound)
    second = [r for r in sim.replicas if r.alive and is_leading(r.state, r.mono)]
    assert len(second) == 1
    assert sim.server.record is not None
    assert sim.server.record.lease_transitions == 1
    sim.deliver(second[0], ReleaseRequested(sim.now(second[0])))
    sim.run(RELEASE_BOUND + 0.1)
    third = [r for r in sim.replicas if r.alive and is_leading(r.state, r.mono)]
    assert len(third) == 1
    assert third[0] is not second[0]
    assert finished(second[0].state)


# --------------------------------------------------------------------------- example-based rules

ME = "pod-a_x1"
OTHER = "pod-b_y2"


def at(t: float, draw: float = 0.0) -> Now:
    return Now(t, T0 + timedelta(seconds=t), draw)


def held_by(holder: str, transitions: int = 3, duration: int = 15) -> LeaseRecord:
    return LeaseRecord(holder, duration, T0, T0, transitions)


def step(state: ElectorState, message: Message) -> tuple[ElectorState, list[Effect]]:
    new, effects = transition(state, message)
    return new, list(effects)


def only(effects: list[Effect], kind: type) -> list[Effect]:
    return [e for e in effects if isinstance(e, kind)]


def leader_state(t: float = 0.0) -> ElectorState:
    """A replica that created the Lease at ``t`` and leads."""
    s = initial_state(config(ME))
    s, _ = step(s, Tick(at(t)))
    s, effects = step(s, LeaseObserved(None, None, at(t)))
    (create,) = only(effects, Create)
    assert isinstance(create, Create)
    s, effects = step(s, WriteSucceeded(create.attempt, create.record, "1", at(t)))
    assert only(effects, StartedLeading)
    return s


def test_first_tick_reads_the_lease() -> None:
    _, effects = step(initial_state(config(ME)), Tick(at(0)))
    assert only(effects, Get)
    assert not only(effects, Create)
    assert not only(effects, Update)
    assert only(effects, ScheduleTick)


def test_absent_lease_is_created_with_zero_transitions() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, effects = step(s, LeaseObserved(None, None, at(0.1)))
    (create,) = only(effects, Create)
    assert isinstance(create, Create)
    assert create.record == LeaseRecord(ME, 15, T0 + timedelta(seconds=0.1), T0 + timedelta(seconds=0.1), 0)
    s, effects = step(s, WriteSucceeded(create.attempt, create.record, "1", at(0.2)))
    assert only(effects, StartedLeading)
    assert is_leading(s, 0.2)
    assert is_leading(s, 10.0999)
    assert not is_leading(s, 10.1)


def test_held_lease_is_not_taken_before_it_expires_by_the_local_clock() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(100)))
    # renewTime says the lease is ancient; only the local observation time counts.
    ancient = LeaseRecord(OTHER, 15, T0 - timedelta(days=1), T0 - timedelta(days=1), 3)
    s, effects = step(s, LeaseObserved(ancient, "7", at(100)))
    assert not only(effects, Update)
    assert lease_expires_at(s) == 115
    (tick,) = only(effects, ScheduleTick)
    assert isinstance(tick, ScheduleTick)
    assert tick.at <= 100 + RETRY_PERIOD
    s, effects = step(s, Tick(at(114.9)))
    assert not only(effects, Update)
    s, effects = step(s, Tick(at(115)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    assert update.expected_resource_version == "7"
    assert update.record.holder_identity == ME
    assert update.record.lease_transitions == 4
    assert update.record.acquire_time == update.record.renew_time == at(115).wall


def test_a_candidate_wakes_exactly_at_expiry_when_that_is_sooner_than_the_poll() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(0)))
    s, effects = step(s, Tick(at(14.0, draw=0.9)))  # polls; next poll would be at 14 + 4.16
    (tick,) = only(effects, ScheduleTick)
    assert isinstance(tick, ScheduleTick)
    assert tick.at == 15.0


def test_the_same_version_seen_again_does_not_restart_the_lease() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(0)))
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(10)))
    assert s.observed_at == 0
    s, _ = step(s, LeaseObserved(held_by(OTHER), "8", at(12)))  # a renewal: a new version
    assert s.observed_at == 12


def test_a_release_observed_from_the_watch_is_taken_at_once() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(0)))
    released = LeaseRecord("", 1, T0, T0, 3)
    s, effects = step(s, LeaseObserved(released, "8", at(3)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    assert update.record.holder_identity == ME
    assert update.record.lease_transitions == 4
    assert update.expected_resource_version == "8"


def test_a_lease_naming_us_is_renewed_at_once_keeping_acquire_time() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(50)))
    ours = LeaseRecord(ME, 15, T0 - timedelta(hours=1), T0, 2)
    s, effects = step(s, LeaseObserved(ours, "5", at(50)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    assert update.record.acquire_time == T0 - timedelta(hours=1)
    assert update.record.lease_transitions == 2


def test_the_leader_renews_every_retry_period_with_the_last_version() -> None:
    s = leader_state(0)
    s, effects = step(s, Tick(at(1.9)))
    assert not only(effects, Update)
    s, effects = step(s, Tick(at(2.0)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    assert update.expected_resource_version == "1"
    assert update.record.acquire_time == T0
    assert update.record.renew_time == at(2.0).wall
    s, effects = step(s, WriteSucceeded(update.attempt, update.record, "2", at(2.5)))
    assert not only(effects, StartedLeading)  # already leading
    assert s.renewed_at == 2.0  # when it was sent, not when the answer came
    assert is_leading(s, 11.99)
    assert not is_leading(s, 12.0)


def test_the_leader_stops_at_the_renew_deadline_without_a_successful_renewal() -> None:
    s = leader_state(0)
    t = 2.0
    while t < 10:
        s, effects = step(s, Tick(at(t)))
        for write in only(effects, Update):
            assert isinstance(write, Update)
            s, _ = step(s, WriteFailed(write.attempt, at(t + 0.1), "503"))
        t += 0.5
    assert is_leading(s, 9.99)
    assert not is_leading(s, 10.0)  # even before any Tick says so
    s, effects = step(s, Tick(at(10.0)))
    assert only(effects, StoppedLeading)
    assert s.phase is Phase.CANDIDATE
    assert not is_leading(s, 10.0)


def created_at_zero(**timing: float) -> tuple[ElectorState, Create]:
    s, _ = step(initial_state(config(ME, **timing)), Tick(at(0)))
    s, effects = step(s, LeaseObserved(None, None, at(0)))
    (create,) = only(effects, Create)
    assert isinstance(create, Create)
    return s, create


def test_an_answer_after_the_deadline_makes_no_leader() -> None:
    # The request timeout is raised to the deadline so the answer is still awaited.
    s, create = created_at_zero(request_timeout=RENEW_DEADLINE)
    s, effects = step(s, WriteSucceeded(create.attempt, create.record, "1", at(9.999)))
    assert only(effects, StartedLeading)
    assert is_leading(s, 9.999)
    s, create = created_at_zero(request_timeout=RENEW_DEADLINE)
    s, effects = step(s, WriteSucceeded(create.attempt, create.record, "1", at(10.0)))
    assert not only(effects, StartedLeading)
    assert not is_leading(s, 10.0)
    # The Lease names us, so the candidate renews it at once to lead again.
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    assert update.expected_resource_version == "1"


def test_a_leader_that_sees_another_holder_steps_down_at_once() -> None:
    s = leader_state(0)
    s, effects = step(s, LeaseObserved(held_by(OTHER, transitions=1), "9", at(3)))
    assert only(effects, StoppedLeading)
    assert not is_leading(s, 3)
    assert s.phase is Phase.CANDIDATE
    s = leader_state(0)
    s, effects = step(s, LeaseObserved(None, None, at(3)))  # deleted
    assert only(effects, StoppedLeading)


def test_a_conflict_reads_at_once_and_renews_once_the_lease_still_names_us() -> None:
    s = leader_state(0)
    s, effects = step(s, Tick(at(2)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    s, effects = step(s, WriteConflicted(update.attempt, at(2.1)))
    assert only(effects, Get)
    assert not only(effects, Update)
    assert is_leading(s, 2.1)  # still within the deadline of the last success
    labelled = LeaseRecord(ME, 15, T0, T0, 0)
    s, effects = step(s, LeaseObserved(labelled, "3", at(2.2)))
    (again,) = only(effects, Update)
    assert isinstance(again, Update)
    assert again.expected_resource_version == "3"


def test_results_of_overtaken_writes_are_ignored() -> None:
    s = leader_state(0)
    s, effects = step(s, Tick(at(2)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    s, effects = step(s, Tick(at(4.0)))  # request_timeout passed: abandoned, re-read
    assert only(effects, Get)
    for late in (
        WriteSucceeded(update.attempt, update.record, "2", at(4.1)),
        WriteConflicted(update.attempt, at(4.1)),
        WriteFailed(update.attempt, at(4.1)),
    ):
        assert transition(s, late) == (s, ())


def test_release_stops_leading_before_the_release_goes_out() -> None:
    s = leader_state(0)
    s, effects = step(s, ReleaseRequested(at(1)))
    assert [type(e) for e in effects][:2] == [StoppedLeading, Release]
    (release,) = only(effects, Release)
    assert isinstance(release, Release)
    assert release.record == LeaseRecord("", 1, at(1).wall, at(1).wall, 0)
    assert release.expected_resource_version == "1"
    assert not is_leading(s, 1)
    s, effects = step(s, WriteSucceeded(release.attempt, release.record, "2", at(1.1)))
    assert finished(s)
    assert effects == []
    assert transition(s, Tick(at(50))) == (s, ())


def test_release_waits_for_a_renewal_in_flight_then_releases_with_its_version() -> None:
    s = leader_state(0)
    s, effects = step(s, Tick(at(2)))
    (update,) = only(effects, Update)
    assert isinstance(update, Update)
    s, effects = step(s, ReleaseRequested(at(2.05)))
    assert only(effects, StoppedLeading)
    assert not only(effects, Release)
    s, effects = step(s, WriteSucceeded(update.attempt, update.record, "2", at(2.1)))
    assert not only(effects, StartedLeading)
    (release,) = only(effects, Release)
    assert isinstance(release, Release)
    assert release.expected_resource_version == "2"


def test_release_without_holding_the_lease_just_stops() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(0)))
    s, effects = step(s, ReleaseRequested(at(1)))
    assert effects == []
    assert finished(s)
    fresh, effects = step(initial_state(config(ME)), ReleaseRequested(at(0)))
    assert effects == []
    assert finished(fresh)


def test_a_lost_release_race_is_retried_only_while_the_lease_is_ours() -> None:
    s = leader_state(0)
    s, effects = step(s, ReleaseRequested(at(1)))
    (release,) = only(effects, Release)
    assert isinstance(release, Release)
    s, effects = step(s, WriteConflicted(release.attempt, at(1.1)))
    assert only(effects, Get)
    s, effects = step(s, LeaseObserved(held_by(OTHER), "5", at(1.2)))
    assert finished(s)
    assert not only(effects, Release)


def test_failed_writes_back_off_a_retry_period_then_read_first() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    s, effects = step(s, LeaseObserved(None, None, at(0)))
    (create,) = only(effects, Create)
    assert isinstance(create, Create)
    s, effects = step(s, WriteFailed(create.attempt, at(0.5, draw=0.0), "503"))
    assert not only(effects, Get)
    assert not only(effects, Create)
    (tick,) = only(effects, ScheduleTick)
    assert isinstance(tick, ScheduleTick)
    assert tick.at == pytest.approx(2.5)
    s, effects = step(s, Tick(at(2.5)))
    assert only(effects, Get)


def test_observed_leader_reports_the_holder() -> None:
    s, _ = step(initial_state(config(ME)), Tick(at(0)))
    assert observed_leader(s) is None
    s, _ = step(s, LeaseObserved(held_by(OTHER), "7", at(0)))
    assert observed_leader(s) == OTHER
    s, _ = step(s, LeaseObserved(LeaseRecord("", 1), "8", at(1)))
    assert observed_leader(s) is None


@settings(max_examples=100, deadline=None)
@given(
    draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20),
    start=st.floats(0, 1e6),
)
def test_candidates_poll_within_client_go_jitter(draws: list[float], start: float) -> None:
    """A candidate that sees a held lease polls every retry_period * (1 + 1.2 u)."""
    s, _ = step(initial_state(config(ME)), Tick(at(start)))
    s, _ = step(s, LeaseObserved(held_by(OTHER, duration=10**6), "7", at(start)))
    t = start
    for draw in draws:
        due = s.next_poll_at
        assert RETRY_PERIOD - 1e-9 <= due - t <= RETRY_PERIOD * (1 + JITTER_FACTOR) + 1e-9
        t = due
        s, effects = step(s, Tick(at(t, draw)))
        assert only(effects, Get)


# --------------------------------------------------------------------------- values and config


def test_names_and_identity() -> None:
    assert lease_name("demo") == "demo-vmcp-status"
    assert identity_base("vmcp-7f9c-abcde", "host") == "vmcp-7f9c-abcde"
    assert identity_base(None, "host") == "host"
    assert identity_base("  ", "host") == "host"
    assert holder_identity("vmcp-7f9c-abcde", "3f2a") == "vmcp-7f9c-abcde_3f2a"
    with pytest.raises(LeaderElectionConfigError) as err:
        identity_base(None, "")
    assert err.value.field == "identity"
    with pytest.raises(LeaderElectionConfigError):
        holder_identity("host", "")
    with pytest.raises(LeaderElectionConfigError) as err:
        lease_name("Not_A_Name")
    assert err.value.field == "lease_name"


def test_default_config_is_client_go_and_tolerates_twenty_percent_drift() -> None:
    cfg = LeaderElectionConfig.for_vmcp("demo", "team-a", ME)
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period, cfg.jitter_factor) == (15, 10, 2, 1.2)
    assert cfg.lease_name == "demo-vmcp-status"
    assert cfg.lease_duration_seconds == 15
    assert cfg.tolerated_clock_drift == pytest.approx(0.2)
    assert cfg.tolerated_clock_drift > RHO  # the simulation stays within what the config promises


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lease_name": ""}, "lease_name"),
        ({"lease_name": "UPPER"}, "lease_name"),
        ({"lease_name": "a" * 254}, "lease_name"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a.b"}, "namespace"),
        ({"identity": ""}, "identity"),
        ({"identity": " x"}, "identity"),
        ({"lease_duration": 0}, "lease_duration"),
        ({"lease_duration": math.inf}, "lease_duration"),
        ({"lease_duration": math.nan}, "lease_duration"),
        ({"lease_duration": True}, "lease_duration"),
        ({"lease_duration": 15.5}, "lease_duration"),
        ({"renew_deadline": -1}, "renew_deadline"),
        ({"renew_deadline": 15}, "renew_deadline"),
        ({"renew_deadline": 20}, "renew_deadline"),
        ({"retry_period": 0}, "retry_period"),
        ({"retry_period": 9}, "retry_period"),  # 9 * 1.2 >= 10
        ({"jitter_factor": -0.1}, "jitter_factor"),
        ({"jitter_factor": 5.0}, "retry_period"),  # 2 * 5 >= 10
        ({"request_timeout": 0}, "request_timeout"),
        ({"request_timeout": 11}, "request_timeout"),
    ],
)
def test_invalid_config_names_the_field(changes: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"lease_name": "demo-vmcp-status", "namespace": "team-a", "identity": ME}
    values.update(changes)
    with pytest.raises(LeaderElectionConfigError) as err:
        LeaderElectionConfig(**values)  # type: ignore[arg-type]
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_config_edge_values_are_accepted() -> None:
    LeaderElectionConfig(
        "l", "n", ME, lease_duration=2, renew_deadline=1.9, retry_period=1.5, jitter_factor=0.2, request_timeout=1.9
    )
    LeaderElectionConfig("l", "n", ME, jitter_factor=0, retry_period=9.9)


times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(
    holder=st.text(max_size=20),
    duration=st.integers(0, 3600),
    acquire=st.none() | times,
    renew=st.none() | times,
    transitions=st.integers(0, 10**6),
)
def test_lease_spec_round_trips(
    holder: str, duration: int, acquire: datetime | None, renew: datetime | None, transitions: int
) -> None:
    record = LeaseRecord(holder, duration, acquire, renew, transitions)
    assert LeaseRecord.from_spec(record.to_spec()) == record


def test_lease_spec_reads_api_zero_values_and_rejects_wrong_types() -> None:
    assert LeaseRecord.from_spec({}) == LeaseRecord()
    assert LeaseRecord.from_spec({"holderIdentity": None, "renewTime": "2026-01-01T00:00:00.000000Z"}).renew_time == T0
    naive = LeaseRecord.from_spec({"acquireTime": datetime(2026, 1, 1)})
    assert naive.acquire_time == T0
    assert LeaseRecord(renew_time=datetime(2026, 1, 1)).to_spec()["renewTime"] == "2026-01-01T00:00:00.000000Z"
    for bad, name in (
        ({"holderIdentity": 3}, "holderIdentity"),
        ({"leaseDurationSeconds": "15"}, "leaseDurationSeconds"),
        ({"leaseTransitions": True}, "leaseTransitions"),
        ({"renewTime": "yesterday"}, "renewTime"),
        ({"acquireTime": 5}, "acquireTime"),
    ):
        with pytest.raises(ValueError, match=f"spec.{name}"):
            LeaseRecord.from_spec(bad)
