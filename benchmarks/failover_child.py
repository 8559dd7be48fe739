"""A leader in a process of its own, for ``bench_failover``'s SIGKILL runs with shortened lease timing.

``vmcp-actors run`` reads only ``VMCP_LEADER_ELECTION`` for the election, so it always
runs client-go's 15/10/2 s; the benchmark uses it for those.  To kill a real process
that runs with the tests' shortened timing too, this module starts the same runtime
the command does (``Runtime.start`` in Kubernetes mode: the sink, the gate and the
identity all from the environment -- ``VMCP_NAME``, ``VMCP_NAMESPACE``, ``KUBECONFIG``,
``POD_NAME``) with the timing from its arguments, and runs until SIGTERM (a graceful
stop) or SIGKILL (what the benchmark sends).

Run: ``python -m benchmarks.failover_child --config FILE --lease 3 --renew 2 --retry 0.5``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.leadership.settings import LeaderElection
from vmcp_actors.runtime.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    """Start the runtime, say so on stdout, and run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="the runtime's YAML config")
    parser.add_argument("--lease", type=float, required=True, help="lease duration, seconds")
    parser.add_argument("--renew", type=float, required=True, help="renew deadline, seconds")
    parser.add_argument("--retry", type=float, required=True, help="retry period, seconds")
    parser.add_argument("--request-timeout", type=float, default=None, help="per Lease request, seconds")
    args = parser.parse_args(argv)
    settings = LeaderElection(
        lease_duration=args.lease,
        renew_deadline=args.renew,
        retry_period=args.retry,
        request_timeout=args.request_timeout,
        events=False,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = Runtime.start(
        RuntimeConfig.load(args.config),
        lifecycle_policy=LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1)),
        leader_election=settings,
        metrics=False,
    )
    print(f"started as {runtime.leadership.identity if runtime.leadership else 'no elector'}", flush=True)
    stop.wait()
    runtime.stop(15.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
