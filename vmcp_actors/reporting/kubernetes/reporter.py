"""``K8sReporter``: writes the runtime's status to its ``VirtualMCPServer`` object.

A port of toolhive's ``pkg/vmcp/status/k8s_reporter.go`` that keeps its mapping field by
field (see :func:`desired_status`) and fixes what makes it expensive and opaque:

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
* **A client-side rate limit** like client-go's (5 QPS, burst 10 by default), which the
  Python client does not have.
* **Errors that say what to fix.**  A 403 names the verb and resource the RBAC lacks, a
  404 names the missing object, network trouble is a transient error.  All are raised
  from :meth:`K8sReporter.report_status`; wrapped in an
  :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter` they are retried with backoff, the
  pending status is kept (a newer one replaces it) and nothing crashes.

The reporter is synchronous and serialises its own calls; wrap it in an ``ActorReporter``
to make reporting non-blocking and coalesced.
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, cast

import attrs
import urllib3

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.timers import Clock, SystemClock
from vmcp_actors.errors import (
    KubernetesConfigError,
    KubernetesError,
    KubernetesNotFoundError,
    KubernetesPermissionError,
    KubernetesTransientError,
    ReporterClosedError,
    ValidationError,
)
from vmcp_actors.health.status_builder import CONDITION_BACKENDS_DISCOVERED, CONDITION_DEGRADED, CONDITION_READY
from vmcp_actors.model.status import Condition, Phase, Status, encode_backend, encode_condition, format_time, parse_time
from vmcp_actors.reporting.base import OnceShutdown, Shutdown
from vmcp_actors.reporting.kubernetes.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket

if TYPE_CHECKING:
    # The kubernetes client takes most of a second to import; it is imported when a
    # reporter or client is built, so processes in CLI mode never pay for it.
    from kubernetes import client

__all__ = [
    "CORE_CONDITION_TYPES",
    "GROUP",
    "PLURAL",
    "RUNTIME_CONDITION_TYPES",
    "VERSION",
    "K8sReporter",
    "K8sReporterStats",
    "desired_status",
    "load_api_client",
    "missing_core_conditions",
]

log = logging.getLogger(__name__)

GROUP: Final = "toolhive.stacklok.dev"
VERSION: Final = "v1beta1"
PLURAL: Final = "virtualmcpservers"
STATUS_RESOURCE: Final = f"{PLURAL}/status"

#: The condition types the runtime owns (toolhive ``knownConditionTypes``): upserted when
#: present in the new status, removed when absent.  Every other type belongs to someone else.
RUNTIME_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_DEGRADED, CONDITION_BACKENDS_DISCOVERED)
#: Runtime conditions every status built by the health monitor carries; a status without
#: one of them is logged as a probable bug, as toolhive does.
CORE_CONDITION_TYPES: Final = (CONDITION_READY, CONDITION_BACKENDS_DISCOVERED)

#: Between attempts after a 409: 10 ms doubling to 200 ms, with up to 100 % added jitter so
#: two writers that collided do not collide again in lock step.
CONFLICT_BACKOFF: Final = Backoff(initial=0.01, maximum=0.2, factor=2.0, jitter=1.0)
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
DEFAULT_CONFLICT_RETRIES: Final = 5
DEFAULT_CACHE_TTL: Final = 60.0

_DNS1123_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_FORBIDDEN_USER: Final = re.compile(r'User "([^"]+)"')


# --------------------------------------------------------------------------- the mapping


def desired_status(obj: Mapping[str, Any], status: Status, now: datetime) -> dict[str, Any]:
    """The ``status`` the object should hold after the runtime reports ``status``.

    toolhive's ``updateStatus`` as a pure function of the object as last read:

    * ``phase`` through :meth:`Phase.from_crd` (unknown values become Pending), ``message``
      and ``backendCount`` set, ``discoveredBackends`` replaced wholesale; empty values are
      dropped, as Go's ``omitempty`` drops them;
    * ``observedGeneration`` is the object's ``metadata.generation``, on the status and on
      each condition the runtime writes (the runtime reports against the spec it was read
      with, and its own ``observed_generation`` and ``timestamp`` are ignored);
    * the runtime's condition types (:data:`RUNTIME_CONDITION_TYPES`) absent from
      ``status`` are removed, and every condition in ``status`` is upserted with
      apimachinery's ``meta.SetStatusCondition`` semantics: ``lastTransitionTime`` changes
      only when ``status`` flips, while reason, message and observedGeneration are
      overwritten in place;
    * everything else -- ``url``, the ``*ConfigHash`` fields, other writers' conditions,
      unknown fields -- is returned exactly as it was.

    One deliberate refinement: on a flip, the new ``lastTransitionTime`` is the one the
    runtime recorded, unless that is older than the stored one (the runtime's view lagged
    another writer's flip); then it is ``now``, so the time never moves backwards.

    ``now`` is only used for that case.  The function never mutates ``obj``; applying its
    result and calling it again with the same ``status`` returns the same dict.
    """
    metadata = obj.get("metadata")
    generation = metadata.get("generation") if isinstance(metadata, Mapping) else None
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        generation = 0
    current = obj.get("status")
    out: dict[str, Any] = copy.deepcopy(dict(current)) if isinstance(current, Mapping) else {}
    out["phase"] = Phase.from_crd(status.phase).value
    _set_or_drop(out, "message", status.message)
    _set_or_drop(out, "backendCount", status.backend_count)
    _set_or_drop(out, "discoveredBackends", [encode_backend(backend) for backend in status.discovered_backends])
    _set_or_drop(out, "observedGeneration", generation)
    existing = out.get("conditions")
    merged = _merge_conditions(existing if isinstance(existing, list) else [], status.conditions, generation, now)
    _set_or_drop(out, "conditions", merged)
    return out


def missing_core_conditions(status: Status) -> list[str]:
    """The core condition types (Ready, BackendsDiscovered) ``status`` lacks."""
    present = {condition.type for condition in status.conditions}
    return [condition_type for condition_type in CORE_CONDITION_TYPES if condition_type not in present]


def _set_or_drop(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key``, or remove it when Go's ``omitempty`` would not marshal ``value``."""
    if value is None or value == "" or value == 0 or value == []:
        out.pop(key, None)
    else:
        out[key] = value


def _merge_conditions(existing: Sequence[Any], new: Sequence[Condition], generation: int, now: datetime) -> list[Any]:
    wanted = {condition.type for condition in new}
    result: list[Any] = [
        item
        for item in existing
        if not (
            isinstance(item, Mapping) and item.get("type") in RUNTIME_CONDITION_TYPES and item["type"] not in wanted
        )
    ]
    for condition in new:
        encoded = encode_condition(attrs.evolve(condition, observed_generation=generation))
        index = next(
            (i for i, item in enumerate(result) if isinstance(item, Mapping) and item.get("type") == condition.type),
            None,
        )
        if index is None:
            result.append(encoded)
            continue
        updated = dict(result[index])
        if updated.get("status") != encoded["status"]:
            updated["status"] = encoded["status"]
            updated["lastTransitionTime"] = _transition_time(
                condition.last_transition_time, updated.get("lastTransitionTime"), now
            )
        updated["reason"] = encoded["reason"]
        updated["message"] = encoded["message"]
        _set_or_drop(updated, "observedGeneration", generation)
        result[index] = updated
    return result


def _transition_time(reported: datetime, stored: object, now: datetime) -> str:
    """The runtime's transition time, unless it predates the stored one (then ``now``)."""
    if isinstance(stored, str):
        try:
            previous = parse_time(stored, "lastTransitionTime")
        except ValidationError:
            return format_time(reported)
        if reported < previous:
            return format_time(max(now, previous))
    return format_time(reported)


# --------------------------------------------------------------------------- cluster config


def load_api_client(env: Mapping[str, str] | None = None) -> client.ApiClient:
    """Build an API client the way a runtime should find its cluster.

    In a pod (``KUBERNETES_SERVICE_HOST`` set) the in-cluster ServiceAccount config is
    used, with token rotation; anywhere else the kubeconfig (``KUBECONFIG``, else
    ``~/.kube/config``).  Reads ``env`` rather than the process environment so callers and
    tests decide what is seen.  Raises :class:`KubernetesConfigError` saying what was
    tried and why it failed.

    Read timeouts are not retried inside a call: the caller (``ActorReporter``) retries
    with backoff, and by then a newer status may have replaced the one that timed out.
    """
    from kubernetes import client
    from kubernetes.config import incluster_config, kube_config
    from kubernetes.config.config_exception import ConfigException

    environ: Mapping[str, str] = os.environ if env is None else env
    configuration = client.Configuration()
    if environ.get(incluster_config.SERVICE_HOST_ENV_NAME):
        loader = incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=incluster_config.SERVICE_TOKEN_FILENAME,
            cert_filename=incluster_config.SERVICE_CERT_FILENAME,
            environ=environ,
        )
        try:
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as error:
            raise KubernetesConfigError(
                f"failed to load the in-cluster config ({incluster_config.SERVICE_HOST_ENV_NAME} is set, "
                f"so this looks like a pod): {error}"
            ) from error
    else:
        kubeconfig = environ.get("KUBECONFIG") or str(Path(environ.get("HOME") or Path.home()) / ".kube" / "config")
        paths = [Path(p).expanduser() for p in kubeconfig.split(kube_config.ENV_KUBECONFIG_PATH_SEPARATOR) if p]
        if not any(path.exists() for path in paths):
            raise KubernetesConfigError(
                f"no Kubernetes config found: not in a pod ({incluster_config.SERVICE_HOST_ENV_NAME} is not set) "
                f"and no kubeconfig at {kubeconfig} (set KUBECONFIG)"
            )
        try:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
        except Exception as error:  # the loader raises anything, from YAML errors to exec plugin failures
            raise KubernetesConfigError(f"failed to load the kubeconfig {kubeconfig}: {error}") from error
    configuration.retries = urllib3.Retry(total=3, connect=3, read=0, redirect=0, status=0, other=0)
    return client.ApiClient(configuration)


# --------------------------------------------------------------------------- the reporter


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
        return sum(self.requests.values())


class _Conflict(Exception):
    """HTTP 409 on a write: the kept object is stale (internal to the retry loop)."""


def _validate_name(field: str, value: object, pattern: re.Pattern[str], max_length: int, kind: str) -> str:
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
        from kubernetes import client

        self._owns_client = api_client is None
        self._api = api_client if api_client is not None else load_api_client(environ)
        self._objects = client.CustomObjectsApi(self._api)
        self._api_exception = client.ApiException
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
            self._write(status)

    # ------------------------------------------------------------------ inspection

    @property
    def requests_made(self) -> collections.Counter[str]:
        """API requests issued so far, by verb (a copy)."""
        with self._counters_lock:
            return collections.Counter(self._requests)

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
            except _Conflict:
                self._count(conflicts=1)
                self._cached = None
                if attempt < attempts:
                    self._sleep(CONFLICT_BACKOFF.delay(attempt, self._rng.random()))
                continue
            self._remember(updated)
            self._count(writes=1)
            log.debug("VirtualMCPServer %s/%s status updated: phase=%s", self.namespace, self.name, desired["phase"])
            return
        raise KubernetesTransientError(
            f"status of VirtualMCPServer {self.namespace}/{self.name} not written: the object changed under each of "
            f"{attempts} attempts (HTTP 409 Conflict; another writer is updating it); will be retried",
            namespace=self.namespace,
            name=self.name,
            status=409,
        )

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
        waited = self._limiter.wait(self._sleep)
        self._count(verb=verb, waited=waited)
        try:
            result = call()
        except self._api_exception as error:
            self._observe_request(verb, error.status if isinstance(error.status, int) and error.status > 0 else None)
            self._raise_api_error(verb, error)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            self._observe_request(verb, None)
            raise KubernetesTransientError(
                f"cannot reach the Kubernetes API server to {verb} VirtualMCPServer {self.namespace}/{self.name}: "
                f"{type(error).__name__}: {error}; will be retried",
                namespace=self.namespace,
                name=self.name,
            ) from error
        self._observe_request(verb, 200)  # GET and PUT /status answer 200 on success
        if not isinstance(result, dict):
            raise KubernetesError(
                f"unexpected response to {verb} VirtualMCPServer {self.namespace}/{self.name}: "
                f"{type(result).__name__} instead of an object",
                namespace=self.namespace,
                name=self.name,
            )
        return cast(dict[str, Any], result)

    def _observe_request(self, verb: str, code: int | None) -> None:
        observer = self.request_observer
        if observer is None:
            return
        try:
            observer(verb, code)
        except Exception:
            log.exception("request observer of %r failed", self)

    def _raise_api_error(self, verb: str, error: client.ApiException) -> NoReturn:
        code = int(error.status) if isinstance(error.status, int) else None
        detail = _server_message(error)
        where = f"VirtualMCPServer {self.namespace}/{self.name}"
        kwargs: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "status": code}
        if code == 409:
            raise _Conflict(detail) from error
        if code == 403:
            resource = STATUS_RESOURCE if verb == "update" else PLURAL
            match = _FORBIDDEN_USER.search(detail)
            who = match.group(1) if match else "the service account"
            raise KubernetesPermissionError(
                f"forbidden: {who} cannot {verb} {resource} in namespace {self.namespace} — grant {verb!r} on "
                f"{resource!r} (apiGroup {GROUP}) in a Role bound to it in that namespace (see deploy/rbac/role.yaml)"
                f"; the API server said: {detail}",
                namespace=self.namespace,
                name=self.name,
                verb=verb,
                resource=resource,
                group=GROUP,
            ) from error
        if code == 404:
            # A recreated object must be read afresh: its uid and resourceVersion are new.
            self._cached = None
            raise KubernetesNotFoundError(
                f"{where} does not exist (HTTP 404 on {verb}); its status will be written once it is created: {detail}",
                **kwargs,
            ) from error
        if code == 401:
            raise KubernetesError(
                f"unauthorized: the API server rejected the credentials used to {verb} {where} "
                f"(expired or invalid token or certificate?): {detail}",
                **kwargs,
            ) from error
        if code is None or code == 429 or code >= 500:
            raise KubernetesTransientError(
                f"the Kubernetes API server could not {verb} {where} now (HTTP {code}): {detail}; will be retried",
                **kwargs,
            ) from error
        raise KubernetesError(
            f"the Kubernetes API server rejected the {verb} of {where} (HTTP {code}): {detail}", **kwargs
        )

    def _close(self, timeout: float | None) -> None:
        self._closed = True
        if self._owns_client:
            self._api.close()  # type: ignore[no-untyped-call]


def _server_message(error: client.ApiException) -> str:
    """The ``message`` of the API server's Status body, else whatever the error carries."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
            return str(decoded["message"])
    return f"{error.status} {error.reason}".strip()
