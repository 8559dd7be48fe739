"""``K8sReporter``: writes the runtime's status to its ``VirtualMCPServer`` object.

A port of toolhive's ``pkg/vmcp/status/k8s_reporter.go`` that keeps its mapping field by
field (:mod:`~vmcp_actors.reporting.kubernetes.mapping`) and fixes what makes it
expensive, ambiguous about ownership, and opaque:

* **Server-side apply, one request per write.**  Each status is one ``PATCH`` of
  ``/status`` with ``application/apply-patch+yaml``, field manager ``vmcp-actors`` and
  ``force=true``, carrying exactly the fields the runtime owns and nothing another manager
  owns.  No GET before it, no resourceVersion, so an operator writing the same object at
  the same time costs no 409 and no retry; a runtime field left out (an absent condition,
  an empty list) is removed by the API server because this manager owned it.
* **The layout the CRD has.**  toolhive v0.47+ reads the runtime's status from
  ``status.runtime`` and projects it itself; older CRDs lack that field and expect the
  top-level fields.  Unless told (``layout``, ``VMCP_STATUS_LAYOUT``), the reporter tries
  ``status.runtime`` and lets the API server decide: a CRD without it rejects the apply
  ("field not declared in schema") or prunes the field, and the legacy layout is used from
  then on.  The runtime never reads the CRD (it has no right to).
* **Transition times kept across restarts.**  ``lastTransitionTime`` moves only when a
  condition's status flips, judged against the object as last applied; a new process (or
  a new leader, see :meth:`K8sReporter.resync`) reads the object once first.
* **observedGeneration only when known**: when the operator passed the generation the
  config came from (``observed_generation``), never the object's current generation.
* **Update as a fallback only.**  An API server that rejects apply (HTTP 415) gets the
  old GET+PUT with resourceVersion and bounded conflict retries
  (:mod:`~vmcp_actors.reporting.kubernetes.update_path`); a warning says so once.
* **No request when nothing would change**, a **client-side rate limit** like client-go's
  (:mod:`~vmcp_actors.reporting.kubernetes.ratelimit`) and **errors that say what to fix**
  (:mod:`~vmcp_actors.reporting.kubernetes.errors`).  Wrapped in an
  :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`, failures are retried and
  the newest status wins.

The reporter is synchronous and serialises its own calls.  Importing this module does not
import the kubernetes client; building a reporter does.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from vmcp_actors.actorkit.timers import Clock
from vmcp_actors.errors import ReporterClosedError, ValidationError
from vmcp_actors.leadership.gate import LeadershipGate
from vmcp_actors.model.status import INT64_MAX, Status
from vmcp_actors.reporting.kubernetes.connection import (
    DEFAULT_CACHE_TTL,
    DEFAULT_CONFLICT_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    Connection,
    K8sReporterStats,
    WriteMethod,
)
from vmcp_actors.reporting.kubernetes.errors import ApplyUnsupported, RuntimeSectionUnknown, runtime_layout_unsupported
from vmcp_actors.reporting.kubernetes.mapping import (
    GROUP,
    PLURAL,
    VERSION,
    StatusLayout,
    apply_patch,
    has_runtime_section,
    missing_core_conditions,
    owned_status,
)
from vmcp_actors.reporting.kubernetes.ratelimit import DEFAULT_BURST, DEFAULT_QPS
from vmcp_actors.reporting.kubernetes.update_path import CONFLICT_BACKOFF, update_status
from vmcp_actors.reporting.protocol import OnceShutdown, Shutdown

if TYPE_CHECKING:
    from kubernetes import client

__all__ = [
    "APPLY_CONTENT_TYPE",
    "CONFLICT_BACKOFF",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_CONFLICT_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "FIELD_MANAGER",
    "K8sReporter",
    "K8sReporterStats",
    "StatusLayout",
    "WriteMethod",
]

log = logging.getLogger(__name__)

#: The field manager every write of the runtime's status is made as.
FIELD_MANAGER: Final = "vmcp-actors"
#: Server-side apply's content type (JSON is YAML, so the body is sent as JSON).
APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"


def _layout(value: StatusLayout | str) -> StatusLayout:
    try:
        return StatusLayout(value)
    except ValueError:
        allowed = ", ".join(member.value for member in StatusLayout)
        raise ValidationError("layout", f"must be one of {allowed} or None, got {value!r}", value) from None


def _method(value: WriteMethod | str) -> WriteMethod:
    try:
        return WriteMethod(value)
    except ValueError:
        allowed = ", ".join(member.value for member in WriteMethod)
        raise ValidationError("method", f"must be one of {allowed}, got {value!r}", value) from None


class K8sReporter:
    """Writes statuses to the ``VirtualMCPServer`` ``namespace/name`` (see the module docstring).

    :param name: the VirtualMCPServer's name (a DNS-1123 subdomain).
    :param namespace: its namespace (a DNS-1123 label).
    :param api_client: the client to use; by default one is built by
        :func:`~vmcp_actors.reporting.kubernetes.client.load_api_client` from ``environ``
        (and closed on shutdown).
    :param qps: client-side rate limit in requests per second; ``<= 0`` disables it.
    :param burst: how many requests may go at once before the rate applies.
    :param clock: time for the rate limiter, the cache age and transition times.
    :param request_timeout: seconds per HTTP request.
    :param conflict_retries: update path only: how many times a write that got 409 is
        re-read and retried before the conflict is raised (as a transient error).
    :param cache_ttl: seconds the last write is trusted to still be stored: an identical
        status is not written again within it (``None``: for ever).  After it, a re-assert
        (``ActorReporter(resend_unchanged_after=...)``) is written, repairing an overwrite.
    :param sleep: how to wait for a rate-limit token or a conflict backoff (tests pass a
        manual clock's ``advance``).
    :param rng: the source of the conflict backoff's jitter.
    :param environ: the environment ``load_api_client`` reads, when it is called.
    :param layout: write ``status.runtime`` or the legacy top-level fields; ``None``
        (default) lets the API server's answer decide (see the module docstring).
    :param observed_generation: the ``metadata.generation`` the runtime's config was
        rendered from, when the operator says so; ``None`` leaves observedGeneration to the
        operator.  A status carrying its own non-zero ``observed_generation`` wins.
    :param method: :attr:`WriteMethod.APPLY` (default) or the update path from the start.
    :param field_manager: the manager name the applies are made as.
    :param request_observer: told ``(verb, http_code)`` after every API request (``None``
        when no HTTP response came back), for metrics; also settable later through the
        ``request_observer`` property.  Called on the writing thread: it must not block.
    :param gate: leader election, consulted before every write: while this replica does
        not lead nothing is sent and the status is counted as ``withheld``; in a new
        leadership term the object is read again before the next write (another leader
        may have written meanwhile), and the runtime re-offers the latest status.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        api_client: client.ApiClient | None = None,
        *,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        clock: Clock | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        conflict_retries: int = DEFAULT_CONFLICT_RETRIES,
        cache_ttl: float | None = DEFAULT_CACHE_TTL,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        layout: StatusLayout | str | None = None,
        observed_generation: int | None = None,
        method: WriteMethod | str = WriteMethod.APPLY,
        field_manager: str = FIELD_MANAGER,
        gate: LeadershipGate | None = None,
        request_observer: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self._conn = Connection(
            name,
            namespace,
            api_client,
            qps=qps,
            burst=burst,
            clock=clock,
            request_timeout=request_timeout,
            conflict_retries=conflict_retries,
            cache_ttl=cache_ttl,
            sleep=sleep or time.sleep,
            rng=rng or random.Random(),
            environ=environ,
        )
        self._conn.request_observer = request_observer
        self.name = self._conn.name
        self.namespace = self._conn.namespace
        if observed_generation is not None and (
            isinstance(observed_generation, bool)
            or not isinstance(observed_generation, int)
            or not 1 <= observed_generation <= INT64_MAX
        ):
            raise ValidationError(
                "observed_generation",
                f"must be a positive integer (a metadata.generation) or None, got {observed_generation!r}",
                observed_generation,
            )
        self._fixed_layout = None if layout is None else _layout(layout)
        self._layout = self._fixed_layout
        self._observed_generation = observed_generation
        self._method = _method(method)
        self._field_manager = field_manager
        # One write at a time, held across requests; the counters have their own lock.
        self._lock = threading.Lock()
        self._closed = False
        self._last_body: dict[str, Any] | None = None
        self._last_body_at = 0.0
        self._shutdown = OnceShutdown(self._close)
        self._gate, self._term = gate, -1

    def __repr__(self) -> str:
        return f"K8sReporter({self.namespace}/{self.name})"

    # ------------------------------------------------------------------ Reporter API

    def start(self) -> Shutdown:
        """Nothing to start (requests are made on demand); the shutdown closes an owned client."""
        return self._shutdown

    def ready_in(self) -> float:
        """Seconds until the rate limiter allows the next request.

        ``ActorReporter`` asks before each write and, rather than block holding a status
        that may be stale by then, waits on a timer and writes the latest status.
        """
        return self._conn.limiter.ready_in()

    def report_status(self, status: Status | None) -> None:
        """Write ``status`` to the object, or do nothing if it already says that.

        Blocks for the request (and any rate-limit wait); raises a
        :class:`~vmcp_actors.errors.KubernetesError` subclass when the status could not
        be written.  Safe from several threads: calls are serialised.
        """
        if status is None:
            return
        with self._lock:
            if self._closed:
                raise ReporterClosedError(f"status (phase {status.phase.value}) reported after {self!r} was shut down")
            if not self._may_write():
                self._conn.count(withheld=1)
                return
            self._write(status)

    def resync(self) -> None:
        """Read the object once before the next write, and let the API server decide the layout again.

        For a replica that has just become the writer (after a leader change): the
        transition times it keeps must be judged against what the previous writer stored.
        """
        with self._lock:
            self._forget()
            if self._fixed_layout is None:
                self._layout = None

    # ------------------------------------------------------------------ inspection

    @property
    def request_observer(self) -> Callable[[str, int | None], None] | None:
        """Told ``(verb, http_code)`` after every API request (``None`` when no response came), for metrics.

        Called on the writing thread: it must not block.
        """
        return self._conn.request_observer

    @request_observer.setter
    def request_observer(self, observer: Callable[[str, int | None], None] | None) -> None:
        self._conn.request_observer = observer

    def stats(self) -> K8sReporterStats:
        """A consistent snapshot of the counters; never waits for a request in progress."""
        return self._conn.stats(self._method, self._layout)

    @property
    def layout(self) -> StatusLayout | None:
        """The layout in use, ``None`` until the API server has decided it."""
        return self._layout

    @property
    def last_seen(self) -> dict[str, Any] | None:
        """A copy of the object as last read or written, if one is kept."""
        return self._conn.last_seen

    # ------------------------------------------------------------------ the write path

    def _may_write(self) -> bool:
        """The one place that decides whether a status may be written now (see ``gate``).

        Called with the write lock held.
        """
        if self._gate is None:
            return True
        term = self._gate.leading_term()
        if term is None:
            return False
        if term != self._term:  # a new term: judge transition times against what is stored now
            self._term = term
            self._forget()
            if self._fixed_layout is None:
                self._layout = None
        return True

    def _write(self, status: Status) -> None:
        missing = missing_core_conditions(status)
        if missing:
            log.warning(
                "core condition(s) %s missing from the new status - this may indicate a bug in status building",
                ", ".join(missing),
            )
        generation = status.observed_generation or self._observed_generation
        if self._method is WriteMethod.APPLY:
            try:
                self._apply(status, generation)
                return
            except ApplyUnsupported as rejected:
                self._method = WriteMethod.UPDATE  # the object read before the rejected apply is still current
                log.warning(
                    "VirtualMCPServer %s/%s: the API server rejected server-side apply (HTTP 415: %s); writing "
                    "the status with GET+PUT updates from now on (more requests, and 409s next to another writer)",
                    self.namespace,
                    self.name,
                    rejected,
                )
        self._layout = update_status(self._conn, status, self._layout, self._fixed_layout, generation, self._decided)

    def _apply(self, status: Status, generation: int | None) -> None:
        if not self._conn.keeps_object:
            # Read afresh (a start, a resync, a recreated object): what was applied before proves nothing.
            self._last_body = None
        base = self._conn.read_once()
        layout = self._layout
        if layout is None:
            layout = StatusLayout.RUNTIME if has_runtime_section(base) else None
            if layout is not None:
                self._decided(layout, "the object already has status.runtime")
        trying = layout or StatusLayout.RUNTIME
        owned = owned_status(status, trying, base, self._conn.clock.now(), generation)
        body = apply_patch(self.name, self.namespace, trying, owned)
        if layout is not None and body == self._last_body and self._conn.fresh(self._last_body_at):
            self._conn.count(skipped=1)
            return
        try:
            applied = self._conn.request("apply", "patch", functools.partial(self._patch, body))
        except RuntimeSectionUnknown as rejected:
            self._legacy_after(str(rejected), layout)
            self._apply(status, generation)
            return
        if trying is StatusLayout.RUNTIME and not has_runtime_section(applied):
            self._legacy_after("status.runtime was pruned from the apply", layout)
            self._apply(status, generation)
            return
        if layout is None:
            self._decided(trying, "the API server kept status.runtime")
        self._conn.remember(applied)
        self._conn.count(writes=1)
        self._last_body = body
        self._last_body_at = self._conn.clock.monotonic()
        log.debug("VirtualMCPServer %s/%s status applied: phase=%s", self.namespace, self.name, owned["phase"])

    def _patch(self, body: dict[str, Any]) -> object:
        return self._conn.objects.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            self.name,
            body,
            field_manager=self._field_manager,
            force=True,
            _content_type=APPLY_CONTENT_TYPE,
            _request_timeout=self._conn.request_timeout,
        )

    def _legacy_after(self, why: str, layout: StatusLayout | None) -> None:
        """The CRD has no ``status.runtime``: use the legacy layout, unless told otherwise."""
        if layout is StatusLayout.RUNTIME and self._fixed_layout is StatusLayout.RUNTIME:
            raise runtime_layout_unsupported(why, namespace=self.namespace, name=self.name)
        if layout is StatusLayout.RUNTIME:
            # The object had status.runtime when read, yet the CRD no longer takes it (downgraded).
            log.warning("VirtualMCPServer %s/%s: status.runtime no longer accepted", self.namespace, self.name)
        self._decided(StatusLayout.LEGACY, f"the CRD has no status.runtime: {why}")

    def _decided(self, layout: StatusLayout, why: str) -> None:
        self._layout = layout
        where = "status.runtime" if layout is StatusLayout.RUNTIME else "the top-level status fields (legacy layout)"
        log.info("VirtualMCPServer %s/%s: the runtime writes %s (%s)", self.namespace, self.name, where, why)

    def _forget(self) -> None:
        self._conn.forget()
        self._last_body = None

    def _close(self, timeout: float | None) -> None:
        self._closed = True
        self._conn.close()
