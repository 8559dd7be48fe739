"""The notices a stream of statuses means, checked against a differently written reference.

The reference works per backend on the whole history at once: drop the statuses that say
nothing new (``degraded``, ``unknown``), collapse repeats, and read the news off the
remaining runs; a backend that leaves the status starts a new history.  The fold under
test sees one status at a time.  Both must agree on every notice, in order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.leadership.event_series import Reason
from vmcp_actors.leadership.status_events import Notice, StatusMemory, notices
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAMES = ("alpha", "beta", "gamma")
#: What a backend can report; None: absent from the status.
BACKEND_STATES = (None, "ready", "degraded", "unknown", "unavailable", "unauthenticated")
BAD = {"unavailable": Reason.BACKEND_UNAVAILABLE, "unauthenticated": Reason.BACKEND_UNAUTHENTICATED}

Step = tuple[Phase, tuple[str | None, ...]]

steps = st.tuples(
    st.sampled_from(list(Phase)),
    st.tuples(*(st.sampled_from(BACKEND_STATES) for _ in NAMES)),
)


def status(step: Step) -> Status:
    phase, states = step
    backends = tuple(
        DiscoveredBackend(name, status=state, message=f"{name} says {state}")
        for name, state in zip(NAMES, states, strict=True)
        if state is not None
    )
    return Status(phase=phase, message=f"{phase}", discovered_backends=backends, timestamp=T0)


def fold(history: list[Step]) -> list[list[Notice]]:
    memory = StatusMemory()
    out = []
    for step in history:
        memory, found = notices(memory, status(step))
        out.append(list(found))
    return out


def reference_backend(states: list[str | None]) -> list[list[Reason]]:
    """Per step, the reasons for one backend, computed from the run structure."""
    out: list[list[Reason]] = []
    announced: str | None = None  # last of ready/unavailable/unauthenticated since it (re)appeared
    for state in states:
        reasons: list[Reason] = []
        if state is None:
            announced = None
        elif state in BAD:
            if announced != state:
                reasons.append(BAD[state])
            announced = state
        elif state == "ready":
            if announced in BAD:
                reasons.append(Reason.BACKEND_RECOVERED)
            announced = "ready"
        out.append(reasons)
    return out


@settings(max_examples=300, deadline=None)
@given(history=st.lists(steps, min_size=1, max_size=40))
def test_notices_match_the_reference(history: list[Step]) -> None:
    got = fold(history)
    per_backend = [reference_backend([step[1][i] for step in history]) for i in range(len(NAMES))]
    for index, step in enumerate(history):
        expected: list[tuple[Reason, str]] = []
        if index > 0 and history[index - 1][0] is not step[0]:
            expected.append((Reason.PHASE_CHANGED, f"{history[index - 1][0].value}->{step[0].value}"))
        for name_index, name in enumerate(NAMES):
            expected.extend((reason, name) for reason in per_backend[name_index][index])
        assert [(n.reason, n.note_key) for n in got[index]] == expected


@settings(max_examples=200, deadline=None)
@given(history=st.lists(steps, min_size=1, max_size=20))
def test_a_repeated_status_says_nothing_new(history: list[Step]) -> None:
    memory = StatusMemory()
    for step in history:
        memory, _ = notices(memory, status(step))
        again, repeated = notices(memory, status(step))
        assert repeated == ()
        assert again == memory


@settings(max_examples=200, deadline=None)
@given(history=st.lists(steps, min_size=1, max_size=40))
def test_a_backend_recovers_only_after_bad_news_and_never_twice(history: list[Step]) -> None:
    last: dict[str, Reason] = {}
    for step, found in zip(history, fold(history), strict=True):
        for name, state in zip(NAMES, step[1], strict=True):
            if state is None:
                last.pop(name, None)  # gone from the status: a new history starts
        for notice in found:
            if notice.reason is Reason.PHASE_CHANGED:
                continue
            previous = last.get(notice.note_key)
            if notice.reason is Reason.BACKEND_RECOVERED:
                assert previous in (Reason.BACKEND_UNAVAILABLE, Reason.BACKEND_UNAUTHENTICATED)
            else:
                assert previous != notice.reason
            last[notice.note_key] = notice.reason


def test_the_notes_say_what_happened() -> None:
    memory = StatusMemory()
    memory, found = notices(memory, status((Phase.READY, ("ready", "ready", None))))
    assert found == ()  # the first status announces no phase change and no healthy backend
    memory, found = notices(memory, status((Phase.DEGRADED, ("unavailable", "ready", None))))
    assert [(n.reason, n.note) for n in found] == [
        (Reason.PHASE_CHANGED, "phase Ready -> Degraded: Degraded"),
        (Reason.BACKEND_UNAVAILABLE, "backend alpha is unavailable: alpha says unavailable"),
    ]
    memory, found = notices(memory, status((Phase.DEGRADED, ("unknown", "unauthenticated", None))))
    assert [(n.reason, n.note_key) for n in found] == [(Reason.BACKEND_UNAUTHENTICATED, "beta")]
    _, found = notices(memory, status((Phase.READY, ("ready", "ready", None))))
    assert [(n.reason, n.note) for n in found] == [
        (Reason.PHASE_CHANGED, "phase Degraded -> Ready: Ready"),
        (Reason.BACKEND_RECOVERED, "backend alpha is ready again"),
        (Reason.BACKEND_RECOVERED, "backend beta is ready again"),
    ]


def test_a_long_backend_message_is_shortened_in_the_note() -> None:
    down = Status(
        phase=Phase.DEGRADED,
        discovered_backends=(DiscoveredBackend("alpha", status="unavailable", message="x" * 5000),),
    )
    _, (notice,) = notices(StatusMemory(), down)
    assert notice.note.startswith("backend alpha is unavailable: xxx")
    assert notice.note.endswith("...")
    assert len(notice.note) < 500
