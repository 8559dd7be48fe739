"""The update fallback: GET+PUT of the whole status with optimistic concurrency, for API servers that reject apply.

toolhive's ``RetryOnConflict`` loop, made cheaper: the object returned by the last GET or
PUT is kept and the next PUT carries its ``resourceVersion``, so a write costs one request
until another writer changes the object; then the API server's 409 says the copy is stale,
and only then is the object read again and the write retried (bounded, with a small
jittered backoff).  Next to an operator that writes often this still costs about three
requests per status, which is why server-side apply is the default and this path is used
only when the API server does not take apply.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Final

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.kubernetes.connection import Connection
from vmcp_actors.reporting.kubernetes.errors import (
    RuntimeSectionUnknown,
    WriteConflict,
    conflict_exhausted,
    runtime_layout_unsupported,
)
from vmcp_actors.reporting.kubernetes.mapping import (
    GROUP,
    PLURAL,
    VERSION,
    StatusLayout,
    desired_status,
    has_runtime_section,
)

__all__ = ["CONFLICT_BACKOFF", "update_status"]

log = logging.getLogger(__name__)

#: Between attempts after a 409: 10 ms doubling to 200 ms, with up to 100 % added jitter so
#: two writers that collided do not collide again in lock step.
CONFLICT_BACKOFF: Final = Backoff(initial=0.01, maximum=0.2, factor=2.0, jitter=1.0)

#: Told which layout the API server's answer decided, and why (the reporter records and logs it).
Decided = Callable[[StatusLayout, str], None]


def update_status(
    conn: Connection,
    status: Status,
    layout: StatusLayout | None,
    fixed: StatusLayout | None,
    generation: int | None,
    decided: Decided,
) -> StatusLayout:
    """Write ``status`` with GET+PUT; return the layout in use afterwards.

    ``layout`` ``None`` means undecided: ``status.runtime`` is tried, and a CRD without it
    prunes (or, with strict field validation, rejects) the field, after which the legacy
    fields are written.  ``fixed`` is the layout the caller insisted on, if any.
    """
    attempts = conn.conflict_retries + 1
    for attempt in range(1, attempts + 1):
        obj = conn.current()
        if layout is None and has_runtime_section(obj):
            layout = StatusLayout.RUNTIME
            decided(layout, "the object already has status.runtime")
        trying = layout or StatusLayout.RUNTIME
        desired = desired_status(obj, status, conn.clock.now(), layout=trying, observed_generation=generation)
        if layout is not None and desired == obj.get("status"):
            conn.count(skipped=1)
            return layout
        put = functools.partial(
            conn.objects.replace_namespaced_custom_object_status,
            GROUP,
            VERSION,
            conn.namespace,
            PLURAL,
            conn.name,
            {**obj, "status": desired},
            _request_timeout=conn.request_timeout,
        )
        try:
            updated = conn.request("update", "update", put)
        except WriteConflict:
            conn.count(conflicts=1)
            conn.forget()
            if attempt < attempts:
                conn.sleep(CONFLICT_BACKOFF.delay(attempt, conn.rng.random()))
            continue
        except RuntimeSectionUnknown as rejected:
            return _legacy(conn, status, fixed, generation, decided, str(rejected))
        conn.remember(updated)
        if trying is StatusLayout.RUNTIME and not has_runtime_section(updated):
            return _legacy(conn, status, fixed, generation, decided, "the API server pruned status.runtime")
        if layout is None:
            decided(trying, "the API server kept status.runtime")
        conn.count(writes=1)
        log.debug("VirtualMCPServer %s/%s status updated: phase=%s", conn.namespace, conn.name, status.phase.value)
        return trying
    raise conflict_exhausted(attempts, namespace=conn.namespace, name=conn.name)


def _legacy(
    conn: Connection,
    status: Status,
    fixed: StatusLayout | None,
    generation: int | None,
    decided: Decided,
    why: str,
) -> StatusLayout:
    """The CRD has no ``status.runtime``: write the legacy fields, unless the runtime layout was insisted on."""
    if fixed is StatusLayout.RUNTIME:
        raise runtime_layout_unsupported(why, namespace=conn.namespace, name=conn.name)
    decided(StatusLayout.LEGACY, f"the CRD has no status.runtime: {why}")
    return update_status(conn, status, StatusLayout.LEGACY, fixed, generation, decided)
