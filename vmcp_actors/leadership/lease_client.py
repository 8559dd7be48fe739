"""The elector's Kubernetes calls: one ``coordination.k8s.io/v1`` Lease, read, written, watched.

Every write is a compare-and-swap: a create fails with 409 if the Lease exists, a
replace carries the ``resourceVersion`` last seen and fails with 409 if anyone wrote
since.  Both come back as :class:`~vmcp_actors.leadership.api_errors.Conflict`, which
the rules treat as "your view is outdated, read again".

The watch is of that one Lease (``fieldSelector=metadata.name=<lease>``), which needs
only the ``watch`` verb, never ``list``.  It starts without a resourceVersion, so the
server first sends the Lease as it is now (a synthetic ``ADDED``) and then every change:
a reconnect is also a fresh read, and there is no version to expire.  A blocked read is
interrupted from another thread by :meth:`LeaseWatch.close`, so stopping never waits
for the server.

Requests are synchronous and bounded by ``request_timeout``; the elector runs them on a
worker thread, never on its actor thread.  Failures raise the errors of
:mod:`vmcp_actors.leadership.api_errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, cast

import attrs
import urllib3

from vmcp_actors.errors import KubernetesError, KubernetesNotFoundError
from vmcp_actors.leadership.api_errors import Conflict, api_error, unreachable
from vmcp_actors.leadership.election import LeaseRecord

if TYPE_CHECKING:
    from kubernetes import client

__all__ = [
    "LEASE_GROUP",
    "LEASE_RESOURCE",
    "LEASE_VERSION",
    "LeaseClient",
    "LeaseWatch",
    "StoredLease",
    "WatchEvent",
]

LEASE_GROUP: Final = "coordination.k8s.io"
LEASE_VERSION: Final = "v1"
LEASE_RESOURCE: Final = "leases"
#: The server ends each watch after this long; the watcher then opens a new one.
WATCH_SECONDS: Final = 60
#: A watch read that sees nothing for this long (beyond the server's own timeout) is dead.
_WATCH_READ_SLACK: Final = 15.0


@attrs.frozen
class StoredLease:
    """The Lease as the API server holds it: its spec and the version to compare against."""

    record: LeaseRecord
    resource_version: str


@attrs.frozen
class WatchEvent:
    """One watch event: ``lease`` is None when the Lease was deleted."""

    type: str
    lease: StoredLease | None


def _stored(obj: object) -> StoredLease:
    if not isinstance(obj, Mapping):
        raise KubernetesError(f"unexpected Lease: {type(obj).__name__} instead of an object")
    metadata = obj.get("metadata")
    spec = obj.get("spec") or {}
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    if not isinstance(version, str) or not version or not isinstance(spec, Mapping):
        raise KubernetesError("unexpected Lease: no metadata.resourceVersion or spec")
    try:
        record = LeaseRecord.from_spec(spec)
    except ValueError as error:
        raise KubernetesError(f"unexpected Lease: {error}") from error
    return StoredLease(record, version)


class LeaseClient:
    """Calls for Lease ``namespace/name`` through ``api_client`` (thread-safe, synchronous)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, name: str, request_timeout: float) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.name = name
        self._objects = client.CustomObjectsApi(api_client)
        self._api_exception = client.ApiException
        self._timeout = request_timeout

    def __repr__(self) -> str:
        return f"LeaseClient({self.namespace}/{self.name})"

    def get(self) -> StoredLease | None:
        """The Lease, or None if it does not exist."""
        try:
            obj = self._call(
                "get",
                lambda: self._objects.get_namespaced_custom_object(
                    LEASE_GROUP,
                    LEASE_VERSION,
                    self.namespace,
                    LEASE_RESOURCE,
                    self.name,
                    _request_timeout=self._timeout,
                ),
            )
        except KubernetesNotFoundError:
            return None
        return _stored(obj)

    def create(self, record: LeaseRecord) -> StoredLease:
        """Create the Lease holding ``record``; :class:`Conflict` if it already exists."""
        body = self._body(record, None)
        obj = self._call(
            "create",
            lambda: self._objects.create_namespaced_custom_object(
                LEASE_GROUP, LEASE_VERSION, self.namespace, LEASE_RESOURCE, body, _request_timeout=self._timeout
            ),
        )
        return _stored(obj)

    def replace(self, record: LeaseRecord, resource_version: str) -> StoredLease:
        """Replace the spec if the Lease is still at ``resource_version``; else :class:`Conflict`.

        A Lease deleted since it was read is a conflict too: the view it was based on is gone.
        """
        body = self._body(record, resource_version)
        try:
            obj = self._call(
                "update",
                lambda: self._objects.replace_namespaced_custom_object(
                    LEASE_GROUP,
                    LEASE_VERSION,
                    self.namespace,
                    LEASE_RESOURCE,
                    self.name,
                    body,
                    _request_timeout=self._timeout,
                ),
            )
        except KubernetesNotFoundError as error:
            raise Conflict(str(error)) from error
        return _stored(obj)

    def open_watch(self) -> LeaseWatch:
        """Start watching the Lease; the first event is its current state (if it exists)."""
        response = self._call(
            "watch",
            lambda: self._objects.list_namespaced_custom_object(
                LEASE_GROUP,
                LEASE_VERSION,
                self.namespace,
                LEASE_RESOURCE,
                watch=True,
                field_selector=f"metadata.name={self.name}",
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(self._timeout, WATCH_SECONDS + _WATCH_READ_SLACK),
            ),
            expect_object=False,
        )
        return LeaseWatch(cast(urllib3.BaseHTTPResponse, response), self._fail)

    # ------------------------------------------------------------------ internals

    def _body(self, record: LeaseRecord, resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}",
            "kind": "Lease",
            "metadata": metadata,
            "spec": record.to_spec(),
        }

    def _call(self, verb: str, call: Callable[[], object], *, expect_object: bool = True) -> object:
        try:
            result = call()
        except self._api_exception as error:
            raise self._translate(verb, error) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise unreachable(verb, error, kind="Lease", namespace=self.namespace, name=self.name) from error
        if expect_object and not isinstance(result, dict):
            raise KubernetesError(f"unexpected answer to {verb} Lease {self.namespace}/{self.name}: {type(result)}")
        return result

    def _translate(self, verb: str, error: client.ApiException) -> Exception:
        return api_error(
            verb,
            error,
            kind="Lease",
            resource=LEASE_RESOURCE,
            group=LEASE_GROUP,
            namespace=self.namespace,
            name=self.name,
        )

    def _fail(self, message: str) -> NoReturn:
        raise KubernetesError(f"watch of Lease {self.namespace}/{self.name}: {message}")


class LeaseWatch:
    """One open watch: iterate for events; :meth:`close` from any thread ends the iteration."""

    def __init__(self, response: urllib3.BaseHTTPResponse, fail: Callable[[str], NoReturn]) -> None:
        self._response = response
        self._fail = fail
        self._closed = False

    def __iter__(self) -> Iterator[WatchEvent]:
        """Events until the server ends the watch, it fails (raised), or it is closed."""
        try:
            for line in self._response:
                if self._closed:
                    return
                if line.strip():
                    event = self._decode(line)
                    if event is not None:
                        yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            if self._closed:
                return
            self._fail(f"{type(error).__name__}: {error}")
        finally:
            self._response.release_conn()

    def close(self) -> None:
        """Interrupt a blocked read and drop the connection (idempotent, any thread)."""
        if self._closed:
            return
        self._closed = True
        shutdown = getattr(self._response, "shutdown", None)  # urllib3 >= 2.3 interrupts a blocked read
        try:
            if callable(shutdown):
                shutdown()
            self._response.close()
        except (ValueError, OSError):
            pass  # the connection was already released or broken: nothing left to interrupt

    def _decode(self, line: bytes) -> WatchEvent | None:
        try:
            event = json.loads(line)
        except ValueError:
            self._fail(f"undecodable event {line[:200]!r}")
        kind = event.get("type") if isinstance(event, dict) else None
        obj = event.get("object") if isinstance(event, dict) else None
        if kind in ("ADDED", "MODIFIED"):
            return WatchEvent(kind, _stored(obj))
        if kind == "DELETED":
            return WatchEvent(kind, None)
        if kind == "BOOKMARK":
            return None
        message = obj.get("message") if isinstance(obj, dict) else None
        return self._fail(f"{kind} event: {message or obj!r}")
