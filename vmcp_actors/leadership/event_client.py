"""The Event recorder's Kubernetes calls: create an ``events.k8s.io/v1`` Event, patch its series.

The rules (:mod:`vmcp_actors.leadership.event_series`) say what to write; this turns
their :class:`~vmcp_actors.leadership.event_series.Create` and
:class:`~vmcp_actors.leadership.event_series.PatchSeries` into requests and the answers
into a :class:`~vmcp_actors.leadership.event_series.WriteOutcome`.  Only ``create`` and
``patch`` on ``events.k8s.io/events`` are needed (the Role grants nothing more); the
patch is a JSON merge patch of ``series`` alone, so the immutable fields of an Event are
never sent twice.

``regarding.uid`` is what ``kubectl describe`` matches Events on, so it is filled in from
the VirtualMCPServer (one GET, remembered) when the rules' object reference lacks it.
Failures other than "already exists" / "not found" are returned as ``FAILED`` with the
translated error, which names the missing RBAC verb on a 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import urllib3

from vmcp_actors.leadership.api_errors import Conflict, api_error, unreachable
from vmcp_actors.leadership.event_series import EventFields, ObjectRef, PatchSeries, WriteOutcome
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION

if TYPE_CHECKING:
    from kubernetes import client

__all__ = ["EVENTS_GROUP", "EVENTS_RESOURCE", "EVENTS_VERSION", "EventClient", "event_body"]

EVENTS_GROUP: Final = "events.k8s.io"
EVENTS_VERSION: Final = "v1"
EVENTS_RESOURCE: Final = "events"
_MERGE_PATCH: Final = "application/merge-patch+json"


def micro_time(value: datetime) -> str:
    """``metav1.MicroTime`` on the wire (RFC 3339, UTC, microseconds)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(event: EventFields, uid: str = "") -> dict[str, Any]:
    """The Event object for ``event``; ``uid`` fills ``regarding.uid`` when the reference lacks one."""
    ref = event.regarding
    regarding: dict[str, str] = {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "name": ref.name,
        "namespace": ref.namespace,
    }
    if ref.uid or uid:
        regarding["uid"] = ref.uid or uid
    body: dict[str, Any] = {
        "apiVersion": f"{EVENTS_GROUP}/{EVENTS_VERSION}",
        "kind": "Event",
        "metadata": {"name": event.name, "namespace": event.namespace},
        "eventTime": micro_time(event.event_time),
        "reportingController": event.reporting_controller,
        "reportingInstance": event.reporting_instance,
        "action": event.action,
        "reason": str(event.reason),
        "type": str(event.type),
        "note": event.note,
        "regarding": regarding,
    }
    if event.series is not None:
        body["series"] = {
            "count": event.series.count,
            "lastObservedTime": micro_time(event.series.last_observed_time),
        }
    return body


class EventClient:
    """Writes Events about ``regarding`` through ``api_client`` (synchronous, one caller at a time)."""

    def __init__(self, api_client: client.ApiClient, regarding: ObjectRef, request_timeout: float) -> None:
        from kubernetes import client

        self.regarding = regarding
        self._objects = client.CustomObjectsApi(api_client)
        self._api_exception = client.ApiException
        self._timeout = request_timeout
        self._uid = regarding.uid

    def create(self, event: EventFields) -> tuple[WriteOutcome, Exception | None]:
        """Create ``event``; ALREADY_EXISTS when an earlier try landed after all."""
        body = event_body(event, self._resolve_uid())
        outcome, error = self._call(
            "create",
            event.name,
            lambda: self._objects.create_namespaced_custom_object(
                EVENTS_GROUP, EVENTS_VERSION, event.namespace, EVENTS_RESOURCE, body, _request_timeout=self._timeout
            ),
        )
        if isinstance(error, Conflict):
            return WriteOutcome.ALREADY_EXISTS, None
        return outcome, error

    def patch_series(self, patch: PatchSeries) -> tuple[WriteOutcome, Exception | None]:
        """Set the Event's series count; NOT_FOUND when it expired or was deleted."""
        body = {"series": {"count": patch.count, "lastObservedTime": micro_time(patch.last_observed_time)}}
        outcome, error = self._call(
            "patch",
            patch.name,
            lambda: self._objects.patch_namespaced_custom_object(
                EVENTS_GROUP,
                EVENTS_VERSION,
                patch.namespace,
                EVENTS_RESOURCE,
                patch.name,
                body,
                _request_timeout=self._timeout,
                _content_type=_MERGE_PATCH,
            ),
        )
        if error is not None and getattr(error, "status", None) == 404:
            return WriteOutcome.NOT_FOUND, None
        return outcome, error

    def _resolve_uid(self) -> str:
        """The VirtualMCPServer's uid, read once (empty while it cannot be read)."""
        if self._uid:
            return self._uid
        ref = self.regarding
        try:
            obj = self._objects.get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name, _request_timeout=self._timeout
            )
        except (self._api_exception, urllib3.exceptions.HTTPError, OSError):
            return ""
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        uid = metadata.get("uid") if isinstance(metadata, dict) else None
        self._uid = uid if isinstance(uid, str) else ""
        return self._uid

    def _call(self, verb: str, name: str, call: Any) -> tuple[WriteOutcome, Exception | None]:
        namespace = self.regarding.namespace
        try:
            call()
        except self._api_exception as error:
            translated = api_error(
                verb,
                error,
                kind="Event",
                resource=EVENTS_RESOURCE,
                group=EVENTS_GROUP,
                namespace=namespace,
                name=name,
            )
            return WriteOutcome.FAILED, translated
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return WriteOutcome.FAILED, unreachable(verb, error, kind="Event", namespace=namespace, name=name)
        return WriteOutcome.SUCCEEDED, None
