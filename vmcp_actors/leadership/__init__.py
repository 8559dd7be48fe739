"""Leadership: which replica writes a VirtualMCPServer's status, and the Events it emits.

Pure rules (no Kubernetes client, no pykka, no threads; time and randomness are
arguments, so hypothesis checks them against simulated API servers):

* :mod:`~vmcp_actors.leadership.election` -- client-go style leader election over one
  ``coordination.k8s.io/v1`` Lease per VirtualMCPServer (``<name>-vmcp-status``);
* :mod:`~vmcp_actors.leadership.event_series` -- ``events.k8s.io/v1`` Events aggregated
  into series and rate limited per key, like client-go's event recorder;
* :mod:`~vmcp_actors.leadership.status_events` -- which Events a new status means;
* :mod:`~vmcp_actors.leadership.gate` -- what a status sink asks before every write;
* :mod:`~vmcp_actors.leadership.settings` -- ``LeaderElection``, the embedding API's knob.

The shell around them (imported only by the runtime, never from here):
:mod:`~vmcp_actors.leadership.lease_client` and
:mod:`~vmcp_actors.leadership.event_client` (the Kubernetes calls),
:mod:`~vmcp_actors.leadership.actor` and :mod:`~vmcp_actors.leadership.elector` (the
elector), :mod:`~vmcp_actors.leadership.events` (the Event recorder) and
:mod:`~vmcp_actors.leadership.service` (``Leadership``: both, wired for the runtime).
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
