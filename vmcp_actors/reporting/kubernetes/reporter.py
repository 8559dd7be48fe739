"""``K8sReporter``: writes the runtime's status to its ``VirtualMCPServer`` object.

A port of toolhive's ``pkg/vmcp/status/k8s_reporter.go`` that keeps its mapping field by
field (:func:`~vmcp_actors.reporting.kubernetes.mapping.desired_status`) and fixes what
makes it expensive and opaque:

* **One request per write, not two.**  toolhive GETs the object before every PUT.  Here
  the object returned by the last GET or PUT is kept and the next PUT carries its
  ``resourceVersion``; the API server's optimistic concurrency (HTTP 409) says when it is
  stale, and only then is the object read again and the write retried (bounded, with a
  small jittered backoff, like client-go's ``RetryOnConflict``).
* **No request when nothing would change.**  The status that would be written is
  computed from the kept object; if it equals what the object already holds, nothing is
  sent.  The kept object is trusted for at most ``cache_ttl`` seconds, so a deliberate
  re-assert (``ActorReporter(resend_unchanged_after=...)``) still repairs a status that
  someone overwrote.
* **A client-side rate limit** like client-go's, with its defaults
  (:mod:`~vmcp_actors.reporting.kubernetes.ratelimit`), which the Python client does not have.
* **Errors that say what to fix** (:mod:`~vmcp_actors.reporting.kubernetes.errors`), all
  raised from :meth:`K8sReporter.report_status`; wrapped in an
  :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter` they are retried with backoff, the
  pending status is kept (a newer one replaces it) and nothing crashes.

The reporter is synchronous and serialises its own calls; wrap it in an ``ActorReporter``
to make reporting non-blocking and coalesced.  Importing this module does not import the
kubernetes client; building a reporter does.
"""

from __future__ import annotations

import collections
import copy
import functools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.timers import Clock, SystemClock
from vmcp_actors.errors import ReporterClosedError, ValidationError
from vmcp_actors.leadership.gate import LeadershipGate
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.kubernetes.client import load_api_client
from vmcp_actors.reporting.kubernetes.errors import (
    WriteConflict,
    api_error,
    conflict_exhausted,
    unexpected_response,
    unreachable,
)
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, desired_status, missing_core_conditions
from vmcp_actors.reporting.kubernetes.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket
from vmcp_actors.reporting.protocol import OnceShutdown, Shutdown

if TYPE_CHECKING:
    from kubernetes import client

__all__ = [
    "CONFLICT_BACKOFF",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_CONFLICT_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "K8sReporter",
    "K8sReporterStats",
]

log = logging.getLogger(__name__)

#: Between attempts after a 409: 10 ms doubling to 200 ms, with up to 100 % added jitter so
#: two writers that collided do not collide again in lock step.
CONFLICT_BACKOFF: Final = Backoff(initial=0.01, maximum=0.2, factor=2.0, jitter=1.0)
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
DEFAULT_CONFLICT_RETRIES: Final = 5
DEFAULT_CACHE_TTL: Final = 60.0

_DNS1123_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@attrs.frozen
class K8sReporterStats:
    """Counters for tests, benchmarks and metrics.

    ``requests`` counts every API request issued, by verb (``get``, ``update``), failed
    ones included; ``skipped_unchanged`` the reports that needed no request at all.
    """

    requests: Mapping[str, int]
    writes: int = 0
    conflicts: int = 0
    skipped_unchanged: int = 0
    rate_limited_s: float = 0.0

    @property
    def total_requests(self) -> int:
        """Every request issued, whatever the verb."""
        return sum(self.requests.values())


def _validate_name(field: str, value: object, pattern: re.Pattern[str], max_length: int, kind: str) -> str:
    """``value`` if it is a valid DNS-1123 ``kind``, else a :class:`ValidationError` naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}", value)
    if not value:
        raise ValidationError(field, "cannot be empty", value)
    if len(value) > max_length or not pattern.match(value):
        raise ValidationError(
            field,
            f"must be a DNS-1123 {kind} (lower-case letters, digits and '-', at most {max_length} characters"
            f"{', dots between labels' if kind == 'subdomain' else ''}), got {value!r}",
            value,
        )
    return value


class K8sReporter:
    """Writes statuses to the ``VirtualMCPServer`` ``namespace/name`` (see the module docstring).

    :param name: the VirtualMCPServer's name (a DNS-1123 subdomain).
    :param namespace: its namespace (a DNS-1123 label).
    :param api_client: the client to use; by default one is built by
        :func:`load_api_client` from ``environ`` (and closed on shutdown).
    :param qps: client-side rate limit in requests per second; ``<= 0`` disables it.
    :param burst: how many requests may go at once before the rate applies.
    :param clock: time for the rate limiter, the cache age and transition times.
    :param request_timeout: seconds per HTTP request.
    :param conflict_retries: how many times a write that got 409 is re-read and retried
        before the conflict is raised (as a transient error).
    :param cache_ttl: seconds the last object seen is trusted without a GET; ``None`` for
        ever.  The PUT's resourceVersion keeps writes safe regardless; the TTL only bounds
        how long an unchanged status is assumed to still be there.
    :param sleep: how to wait for a rate-limit token or a conflict backoff (tests pass a
        manual clock's ``advance``).  The wait blocks the calling thread -- the actor's,
        when wrapped in an ``ActorReporter`` -- while newer statuses queue up (coalesced)
        in the ``ActorReporter``'s slot.
    :param rng: the source of the conflict backoff's jitter.
    :param environ: the environment :func:`load_api_client` reads, when it is called.
    :param gate: leader election: write only while it says this replica leads (a
        follower's report returns without a request; the runtime re-sends the latest
        status when leadership is acquired), and forget the kept object in a new term.
    :param request_observer: told ``(verb, http_code)`` after every API request (``None``
        when no HTTP response came back), for metrics; also settable later through the
        ``request_observer`` attribute.  Called on the writing thread: it must not block.
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
        gate: LeadershipGate | None = None,
        request_observer: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self.request_observer = request_observer
        self.name = _validate_name("name", name, _DNS1123_SUBDOMAIN, 253, "subdomain")
        self.namespace = _validate_name("namespace", namespace, _DNS1123_LABEL, 63, "label")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, int | float) or request_timeout <= 0:
            raise ValidationError("request_timeout", f"must be > 0 seconds, got {request_timeout!r}", request_timeout)
        if isinstance(conflict_retries, bool) or not isinstance(conflict_retries, int) or conflict_retries < 0:
            raise ValidationError(
                "conflict_retries", f"must be an integer >= 0, got {conflict_retries!r}", conflict_retries
            )
        if cache_ttl is not None and not cache_ttl >= 0:
            raise ValidationError("cache_ttl", f"must be >= 0 seconds or None, got {cache_ttl!r}", cache_ttl)
        self._clock: Clock = clock or SystemClock()
        self._limiter = TokenBucket(qps, burst, self._clock)
        self._request_timeout = float(request_timeout)
        self._conflict_retries = conflict_retries
        self._cache_ttl = cache_ttl
        self._sleep = sleep or time.sleep
        self._rng = rng or random.Random()
        # Built here, not at import: see :mod:`vmcp_actors.reporting.kubernetes.client`.
        import urllib3
        from kubernetes import client

        self._owns_client = api_client is None
        self._api = api_client if api_client is not None else load_api_client(environ)
        self._objects = client.CustomObjectsApi(self._api)
        self._api_exception = client.ApiException
        self._transport_errors: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)
        # One write at a time (held across requests), and a separate lock for the counters
        # so that reading them never waits for a slow request.
        self._lock = threading.Lock()
        self._counters_lock = threading.Lock()
        self._closed = False
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._requests: collections.Counter[str] = collections.Counter()
        self._writes = 0
        self._conflicts = 0
        self._skipped = 0
        self._rate_limited_s = 0.0
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
        return self._limiter.ready_in()

    def report_status(self, status: Status | None) -> None:
        """Write ``status`` to the object, or do nothing if it already says that.

        Blocks for the requests (and any rate-limit wait); raises a
        :class:`~vmcp_actors.errors.KubernetesError` subclass when the status could not
        be written.  Safe from several threads: calls are serialised.
        """
        if status is None:
            return
        with self._lock:
            if self._closed:
                raise ReporterClosedError(f"status (phase {status.phase.value}) reported after {self!r} was shut down")
            if self._may_write():
                self._write(status)

    # ------------------------------------------------------------------ inspection

    def stats(self) -> K8sReporterStats:
        """A consistent snapshot of the counters; never waits for a request in progress."""
        with self._counters_lock:
            return K8sReporterStats(
                requests=dict(self._requests),
                writes=self._writes,
                conflicts=self._conflicts,
                skipped_unchanged=self._skipped,
                rate_limited_s=self._rate_limited_s,
            )

    @property
    def last_seen(self) -> dict[str, Any] | None:
        """A copy of the object as last read or written, if one is kept."""
        # The kept object is replaced, never changed in place, so reading the reference is safe.
        return copy.deepcopy(self._cached)

    # ------------------------------------------------------------------ internals

    def _write(self, status: Status) -> None:
        attempts = self._conflict_retries + 1
        for attempt in range(1, attempts + 1):
            obj = self._current_object()
            desired = desired_status(obj, status, self._clock.now())
            if desired == obj.get("status"):
                self._count(skipped=1)
                return
            if attempt == 1:
                missing = missing_core_conditions(status)
                if missing:
                    log.warning(
                        "core condition(s) %s missing from the new status - this may indicate a bug in status building",
                        ", ".join(missing),
                    )
            body = {**obj, "status": desired}
            if not self._may_write():
                return
            try:
                updated = self._request(
                    "update",
                    functools.partial(
                        self._objects.replace_namespaced_custom_object_status,
                        GROUP,
                        VERSION,
                        self.namespace,
                        PLURAL,
                        self.name,
                        body,
                        _request_timeout=self._request_timeout,
                    ),
                )
            except WriteConflict:
                self._count(conflicts=1)
                self._cached = None
                if attempt < attempts:
                    self._sleep(CONFLICT_BACKOFF.delay(attempt, self._rng.random()))
                continue
            self._remember(updated)
            self._count(writes=1)
            log.debug("VirtualMCPServer %s/%s status updated: phase=%s", self.namespace, self.name, desired["phase"])
            return
        raise conflict_exhausted(attempts, namespace=self.namespace, name=self.name)

    def _may_write(self) -> bool:
        """Whether the leadership gate (if any) lets this replica write now; a new term drops the kept object."""
        term = None if self._gate is None else self._gate.leading_term()
        if term is not None and term != self._term:
            self._cached, self._term = None, term  # another leader may have written in between
        return self._gate is None or term is not None

    def _current_object(self) -> dict[str, Any]:
        cached = self._cached
        if cached is not None and (
            self._cache_ttl is None or self._clock.monotonic() - self._cached_at < self._cache_ttl
        ):
            return cached
        obj = self._request(
            "get",
            lambda: self._objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=self._request_timeout
            ),
        )
        self._remember(obj)
        return obj

    def _count(
        self, *, verb: str = "", waited: float = 0.0, writes: int = 0, conflicts: int = 0, skipped: int = 0
    ) -> None:
        with self._counters_lock:
            if verb:
                self._requests[verb] += 1
            self._rate_limited_s += waited
            self._writes += writes
            self._conflicts += conflicts
            self._skipped += skipped

    def _remember(self, obj: dict[str, Any]) -> None:
        self._cached = obj
        self._cached_at = self._clock.monotonic()

    def _request(self, verb: str, call: Callable[[], object]) -> dict[str, Any]:
        """Make one rate-limited request, counted, with every failure translated."""
        waited = self._limiter.wait(self._sleep)
        self._count(verb=verb, waited=waited)
        where = {"namespace": self.namespace, "name": self.name}
        try:
            result = call()
        except self._api_exception as error:
            self._observe_request(verb, error.status if isinstance(error.status, int) and error.status > 0 else None)
            if error.status == 404:
                # A recreated object must be read afresh: its uid and resourceVersion are new.
                self._cached = None
            raise api_error(verb, error, **where) from error
        except self._transport_errors as error:
            self._observe_request(verb, None)
            raise unreachable(verb, error, **where) from error
        self._observe_request(verb, 200)  # GET and PUT /status answer 200 on success
        if not isinstance(result, dict):
            raise unexpected_response(verb, result, **where)
        return cast(dict[str, Any], result)

    def _observe_request(self, verb: str, code: int | None) -> None:
        observer = self.request_observer
        if observer is None:
            return
        try:
            observer(verb, code)
        except Exception:
            log.exception("request observer of %r failed", self)

    def _close(self, timeout: float | None) -> None:
        self._closed = True
        if self._owns_client:
            self._api.close()  # type: ignore[no-untyped-call]
