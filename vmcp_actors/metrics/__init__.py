"""Prometheus metrics of a running vMCP: backends, probes, restarts, status writes, calls.

* :mod:`~vmcp_actors.metrics.registry` defines every metric (the names are the contract);
* :mod:`~vmcp_actors.metrics.state` reads the state metrics from immutable snapshots at scrape time;
* :mod:`~vmcp_actors.metrics.observer` applies the actors' events to the event metrics on its own thread;
* :mod:`~vmcp_actors.metrics.http` serves ``/metrics`` (``vmcp-actors run --metrics-port``).

Nothing is imported here, so the supervisor can import :mod:`~vmcp_actors.metrics.events`
without pulling in prometheus_client.
"""
