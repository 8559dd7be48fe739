"""``stopped_status``: what a gracefully stopped vMCP leaves behind, for any status it had before.

A rolling update stops the old pod gracefully; its last word must not be ``Failed``
("No routable backends"), which pages someone every time.  It is Pending with Ready=False,
reason ``Stopped`` and a message saying when; whatever sink the runtime reports to
(Kubernetes, file, log) gets this same status.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import statuses, times
from vmcp_actors.health.status_builder import stopped_status
from vmcp_actors.model.codec import decode_status, encode_status
from vmcp_actors.model.conditions import CONDITION_BACKENDS_DISCOVERED, CONDITION_READY, REASON_STOPPED
from vmcp_actors.model.status import ConditionStatus, Phase, Status


@given(st.none() | statuses(), times)
def test_a_stopped_vmcp_is_pending_and_not_ready_because_it_was_stopped(previous: Status | None, now: datetime) -> None:
    final = stopped_status(previous, now)
    assert final.phase is Phase.PENDING
    assert final.message == f"vMCP stopped at {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    ready = final.condition(CONDITION_READY)
    assert ready is not None
    assert (ready.status, ready.reason, ready.message) == (ConditionStatus.FALSE, REASON_STOPPED, final.message)
    before = None if previous is None else previous.condition(CONDITION_READY)
    if before is not None and before.status is ConditionStatus.FALSE:
        assert ready.last_transition_time == before.last_transition_time, "already not ready: no new transition"
    else:
        assert ready.last_transition_time == now.astimezone(UTC).replace(microsecond=0)
    discovered = None if previous is None else previous.condition(CONDITION_BACKENDS_DISCOVERED)
    assert final.condition(CONDITION_BACKENDS_DISCOVERED) == discovered
    assert [c.type for c in final.conditions] == [CONDITION_READY] + ([] if discovered is None else [discovered.type])
    assert (final.discovered_backends, final.backend_count) == ((), 0)
    assert decode_status(encode_status(final)) == final, "every sink can hold it as it is"
