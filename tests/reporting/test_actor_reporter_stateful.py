"""Stateful property test of ActorReporter against a sink that is slow, fails and recovers.

Whatever the interleaving of reports, failures, recoveries and time passing:
* the writes are a subsequence of the reports, in report order (nothing older after newer);
* no two consecutive writes say the same thing;
* after shutdown with a healthy sink, the last write says what the last report said;
* shutting down twice is harmless.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.sinks import ControllableSink
from vmcp_actors.actorkit.timers import ManualScheduler
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ReporterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sink = ControllableSink()
        self.scheduler = ManualScheduler()
        self.reporter = ActorReporter(self.sink, scheduler=self.scheduler, rng=random.Random(0))
        self.shutdown = self.reporter.start()
        self.reports: list[Status] = []

    @rule(content=st.integers(min_value=0, max_value=2), phase=st.sampled_from([Phase.READY, Phase.DEGRADED]))
    def report(self, content: int, phase: Phase) -> None:
        # Content repeats on purpose (to exercise skipping); the timestamp makes each
        # report a distinct object we can find again among the writes.
        report = Status(phase=phase, message=f"content {content}", timestamp=T0 + timedelta(seconds=len(self.reports)))
        self.reports.append(report)
        self.reporter.report_status(report)

    @rule()
    def sink_fails(self) -> None:
        self.sink.failing = True

    @rule()
    def sink_recovers(self) -> None:
        self.sink.failing = False

    @rule(delay=st.sampled_from([0.0, 0.0005, 0.002]))
    def sink_latency(self, delay: float) -> None:
        self.sink.delay = delay

    @rule(seconds=st.sampled_from([0.01, 0.2, 1.0, 45.0]))
    def time_passes(self, seconds: float) -> None:
        self.scheduler.advance(seconds)

    @rule()
    def settle(self) -> None:
        """Liveness: once the actor is idle, a healthy sink not backing off has the latest."""
        self.reporter.wait_idle()
        if self.reports and not self.sink.failing and self.scheduler.pending() == 0:
            assert self.sink.writes, "nothing written although the sink is healthy"
            assert self.sink.writes[-1].same_content(self.reports[-1])

    @invariant()
    def writes_are_an_ordered_subsequence_of_reports(self) -> None:
        index = {id(report): i for i, report in enumerate(self.reports)}
        positions = [index[id(write)] for write in list(self.sink.writes)]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)

    @invariant()
    def consecutive_writes_differ(self) -> None:
        writes = list(self.sink.writes)
        for before, after in itertools.pairwise(writes):
            assert not before.same_content(after)

    def teardown(self) -> None:
        self.sink.failing = False
        self.shutdown(10.0)
        self.shutdown(10.0)  # twice is harmless
        if self.reports:
            assert self.sink.writes[-1].same_content(self.reports[-1])
        stats = self.reporter.stats()
        assert stats.received == len(self.reports)
        assert stats.received == stats.written + stats.skipped_unchanged + stats.coalesced


ReporterMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestActorReporterStateful = ReporterMachine.TestCase
