"""Leadership: which replica writes a VirtualMCPServer's status, and the Events it emits.

Two pure rule sets, each driven later by a thin actor that performs their effects:

* :mod:`vmcp_actors.leadership.election` -- client-go style leader election over one
  ``coordination.k8s.io/v1`` Lease per VirtualMCPServer (``<name>-vmcp-status``).
* :mod:`vmcp_actors.leadership.event_series` -- ``events.k8s.io/v1`` Events aggregated
  into series and rate limited per key, like client-go's event recorder.

Neither imports Kubernetes, pykka or a clock: time and randomness arrive as arguments,
so the rules are checked by hypothesis against simulated API servers.
"""

from vmcp_actors.leadership.election import (
    ElectorState,
    LeaderElectionConfig,
    LeaderElectionConfigError,
    LeaseRecord,
    Now,
    Phase,
    finished,
    holder_identity,
    identity_base,
    initial_state,
    is_leading,
    lease_name,
    observed_leader,
    transition,
)
from vmcp_actors.leadership.event_series import (
    EventSeriesError,
    Occurrence,
    Reason,
    RecorderState,
    SeriesPolicy,
    flush,
    initial_recorder,
    record,
)

__all__ = [
    "ElectorState",
    "EventSeriesError",
    "LeaderElectionConfig",
    "LeaderElectionConfigError",
    "LeaseRecord",
    "Now",
    "Occurrence",
    "Phase",
    "Reason",
    "RecorderState",
    "SeriesPolicy",
    "finished",
    "flush",
    "holder_identity",
    "identity_base",
    "initial_recorder",
    "initial_state",
    "is_leading",
    "lease_name",
    "observed_leader",
    "record",
    "transition",
]
