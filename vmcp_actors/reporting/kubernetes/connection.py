"""What the write paths of ``K8sReporter`` share: coordinates, rate-limited requests, the kept object, counters.

Both the server-side apply path (:mod:`~vmcp_actors.reporting.kubernetes.reporter`) and the
update fallback (:mod:`~vmcp_actors.reporting.kubernetes.update_path`) send requests through
one :class:`Connection`, so each request is rate limited, counted by verb and translated
into an error that says what to fix in exactly one place.
"""

from __future__ import annotations

import collections
import copy
import enum
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from vmcp_actors.actorkit.timers import Clock, SystemClock
from vmcp_actors.errors import ValidationError
from vmcp_actors.reporting.kubernetes.client import load_api_client
from vmcp_actors.reporting.kubernetes.errors import api_error, unexpected_response, unreachable
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, StatusLayout
from vmcp_actors.reporting.kubernetes.ratelimit import TokenBucket

if TYPE_CHECKING:
    from kubernetes import client

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_CONFLICT_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "Connection",
    "K8sReporterStats",
    "WriteMethod",
]

DEFAULT_REQUEST_TIMEOUT: Final = 10.0
DEFAULT_CONFLICT_RETRIES: Final = 5
DEFAULT_CACHE_TTL: Final = 60.0

_DNS1123_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class WriteMethod(enum.StrEnum):
    """How a status is written: server-side apply (one request), or GET+PUT updates (the fallback)."""

    APPLY = "apply"
    UPDATE = "update"


@attrs.frozen
class K8sReporterStats:
    """Counters for tests, benchmarks and metrics.

    ``requests`` counts every API request issued, by kind (``get``, ``apply``, ``update``),
    failed ones included; ``writes`` the statuses that reached the object;
    ``skipped_unchanged`` the reports that needed no request at all; ``withheld`` the
    reports the gate refused.  ``method`` and ``layout`` say how the reporter writes now
    (``layout`` is empty until the API server has decided it).
    """

    requests: Mapping[str, int]
    writes: int = 0
    conflicts: int = 0
    skipped_unchanged: int = 0
    withheld: int = 0
    rate_limited_s: float = 0.0
    method: str = WriteMethod.APPLY.value
    layout: str = ""

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


class Connection:
    """The object's coordinates, the API client, the limiter, the kept object and the counters.

    Not thread-safe for writes: the reporter serialises them.  The counters have their own
    lock, so reading them never waits for a slow request.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        api_client: client.ApiClient | None,
        *,
        qps: float,
        burst: int,
        clock: Clock | None,
        request_timeout: float,
        conflict_retries: int,
        cache_ttl: float | None,
        sleep: Callable[[float], None],
        rng: random.Random,
        environ: Mapping[str, str] | None,
    ) -> None:
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
        self.clock: Clock = clock or SystemClock()
        self.limiter = TokenBucket(qps, burst, self.clock)
        #: Told ``(verb, http_code)`` after every request (metrics); set by whoever observes.
        self.request_observer: Callable[[str, int | None], None] | None = None
        self.request_timeout = float(request_timeout)
        self.conflict_retries = conflict_retries
        self.cache_ttl = cache_ttl
        self.sleep = sleep
        self.rng = rng
        # Built here, not at import: see :mod:`vmcp_actors.reporting.kubernetes.client`.
        import urllib3
        from kubernetes import client

        self._owns_client = api_client is None
        self.api = api_client if api_client is not None else load_api_client(environ)
        self.objects = client.CustomObjectsApi(self.api)
        self._api_exception = client.ApiException
        self._transport_errors: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)
        self._counters_lock = threading.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._requests: collections.Counter[str] = collections.Counter()
        self._writes = 0
        self._conflicts = 0
        self._skipped = 0
        self._withheld = 0
        self._rate_limited_s = 0.0

    # ------------------------------------------------------------------ the kept object

    def read_once(self) -> dict[str, Any]:
        """The object as last read or written; read it if nothing is kept (the apply path's one read)."""
        return self._cached if self._cached is not None else self.get()

    def current(self) -> dict[str, Any]:
        """The kept object while it is fresh (``cache_ttl``), else read again (the update path)."""
        if self._cached is not None and self.fresh(self._cached_at):
            return self._cached
        return self.get()

    def get(self) -> dict[str, Any]:
        """Read the object and keep it."""
        obj = self.request(
            "get",
            "get",
            lambda: self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=self.request_timeout
            ),
        )
        self.remember(obj)
        return obj

    @property
    def keeps_object(self) -> bool:
        """Whether an object is kept (else the next :meth:`read_once` reads it)."""
        return self._cached is not None

    def fresh(self, since: float) -> bool:
        """Whether something kept since monotonic ``since`` is still trusted (``cache_ttl``)."""
        return self.cache_ttl is None or self.clock.monotonic() - since < self.cache_ttl

    def remember(self, obj: dict[str, Any]) -> None:
        """Keep ``obj`` (a GET or a write's answer) as the object as last seen."""
        self._cached = obj
        self._cached_at = self.clock.monotonic()

    def forget(self) -> None:
        """Drop the kept object: the next write reads it first."""
        self._cached = None

    @property
    def last_seen(self) -> dict[str, Any] | None:
        """A copy of the object as last read or written, if one is kept."""
        # The kept object is replaced, never changed in place, so reading the reference is safe.
        return copy.deepcopy(self._cached)

    # ------------------------------------------------------------------ requests

    def request(self, stat: str, verb: str, call: Callable[[], object]) -> dict[str, Any]:
        """Make one rate-limited request, counted under ``stat``, with every failure translated.

        ``verb`` is the RBAC verb the request needs, which the errors name.
        """
        waited = self.limiter.wait(self.sleep)
        self.count(stat=stat, waited=waited)
        where = {"namespace": self.namespace, "name": self.name}
        try:
            result = call()
        except self._api_exception as error:
            self._observe(verb, error.status if isinstance(error.status, int) and error.status > 0 else None)
            if error.status == 404:
                # A recreated object must be read afresh: its uid, resourceVersion and status are new.
                self.forget()
            raise api_error(verb, error, **where) from error
        except self._transport_errors as error:
            self._observe(verb, None)
            raise unreachable(verb, error, **where) from error
        self._observe(verb, 200)  # GET, PUT and the apply PATCH of /status answer 200 on success
        if not isinstance(result, dict):
            raise unexpected_response(verb, result, **where)
        return cast(dict[str, Any], result)

    def _observe(self, verb: str, code: int | None) -> None:
        """Tell the request observer (metrics), if any; its failure never fails a write."""
        observer = self.request_observer
        if observer is None:
            return
        try:
            observer(verb, code)
        except Exception:
            log.exception("request observer of %s/%s failed", self.namespace, self.name)

    # ------------------------------------------------------------------ counters

    def count(
        self,
        *,
        stat: str = "",
        waited: float = 0.0,
        writes: int = 0,
        conflicts: int = 0,
        skipped: int = 0,
        withheld: int = 0,
    ) -> None:
        """Add to the counters (thread-safe)."""
        with self._counters_lock:
            if stat:
                self._requests[stat] += 1
            self._rate_limited_s += waited
            self._writes += writes
            self._conflicts += conflicts
            self._skipped += skipped
            self._withheld += withheld

    def stats(self, method: WriteMethod, layout: StatusLayout | None) -> K8sReporterStats:
        """A consistent snapshot of the counters."""
        with self._counters_lock:
            return K8sReporterStats(
                requests=dict(self._requests),
                writes=self._writes,
                conflicts=self._conflicts,
                skipped_unchanged=self._skipped,
                withheld=self._withheld,
                rate_limited_s=self._rate_limited_s,
                method=method.value,
                layout="" if layout is None else layout.value,
            )

    def close(self) -> None:
        """Close the API client if this connection built it."""
        if self._owns_client:
            self.api.close()  # type: ignore[no-untyped-call]
