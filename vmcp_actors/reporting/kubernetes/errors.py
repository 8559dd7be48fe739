"""API failures translated into errors that say what to fix, naming the verb and the resource.

The Python client raises one ``ApiException`` for everything, with the server's reason
buried in a JSON body.  An operator reading a log line needs the opposite: a 403 that
names the verb and resource the RBAC lacks (and who lacks it), a 404 that names the
missing object, network trouble and 5xx as transient errors that will be retried.  These
functions build those errors from what the client raised; they read only the exception's
fields, so this module never imports the client.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

from vmcp_actors.errors import (
    KubernetesError,
    KubernetesNotFoundError,
    KubernetesPermissionError,
    KubernetesTransientError,
)
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, STATUS_RESOURCE

if TYPE_CHECKING:
    from kubernetes.client import ApiException

__all__ = ["WriteConflict", "api_error", "conflict_exhausted", "server_message", "unexpected_response", "unreachable"]

_FORBIDDEN_USER: Final = re.compile(r'User "([^"]+)"')


class WriteConflict(Exception):
    """HTTP 409 on a write: the object changed since it was read (handled by the retry loop)."""


def api_error(verb: str, error: ApiException, *, namespace: str, name: str) -> Exception:
    """The error to raise for the API server's answer ``error`` to ``verb`` on ``namespace/name``."""
    code = int(error.status) if isinstance(error.status, int) else None
    detail = server_message(error)
    where = f"VirtualMCPServer {namespace}/{name}"
    kwargs: dict[str, Any] = {"namespace": namespace, "name": name, "status": code}
    if code == 409:
        return WriteConflict(detail)
    if code == 403:
        return _forbidden(verb, detail, namespace=namespace, name=name)
    if code == 404:
        return KubernetesNotFoundError(
            f"{where} does not exist (HTTP 404 on {verb}); its status will be written once it is created: {detail}",
            **kwargs,
        )
    if code == 401:
        return KubernetesError(
            f"unauthorized: the API server rejected the credentials used to {verb} {where} "
            f"(expired or invalid token or certificate?): {detail}",
            **kwargs,
        )
    if code is None or code == 429 or code >= 500:
        return KubernetesTransientError(
            f"the Kubernetes API server could not {verb} {where} now (HTTP {code}): {detail}; will be retried",
            **kwargs,
        )
    return KubernetesError(
        f"the Kubernetes API server rejected the {verb} of {where} (HTTP {code}): {detail}", **kwargs
    )


def _forbidden(verb: str, detail: str, *, namespace: str, name: str) -> KubernetesPermissionError:
    """A 403, naming who lacks which verb on which resource and the Role that grants it."""
    resource = STATUS_RESOURCE if verb == "update" else PLURAL
    match = _FORBIDDEN_USER.search(detail)
    who = match.group(1) if match else "the service account"
    return KubernetesPermissionError(
        f"forbidden: {who} cannot {verb} {resource} in namespace {namespace} — grant {verb!r} on "
        f"{resource!r} (apiGroup {GROUP}) in a Role bound to it in that namespace (see deploy/rbac/role.yaml)"
        f"; the API server said: {detail}",
        namespace=namespace,
        name=name,
        verb=verb,
        resource=resource,
        group=GROUP,
    )


def unreachable(verb: str, error: Exception, *, namespace: str, name: str) -> KubernetesTransientError:
    """A network failure (no answer at all) on ``verb``: transient, retried by the caller."""
    return KubernetesTransientError(
        f"cannot reach the Kubernetes API server to {verb} VirtualMCPServer {namespace}/{name}: "
        f"{type(error).__name__}: {error}; will be retried",
        namespace=namespace,
        name=name,
    )


def unexpected_response(verb: str, result: object, *, namespace: str, name: str) -> KubernetesError:
    """An answer to ``verb`` that is not an object (a misbehaving server or proxy)."""
    return KubernetesError(
        f"unexpected response to {verb} VirtualMCPServer {namespace}/{name}: "
        f"{type(result).__name__} instead of an object",
        namespace=namespace,
        name=name,
    )


def conflict_exhausted(attempts: int, *, namespace: str, name: str) -> KubernetesTransientError:
    """Every attempt of a write met HTTP 409: another writer keeps changing the object."""
    return KubernetesTransientError(
        f"status of VirtualMCPServer {namespace}/{name} not written: the object changed under each of "
        f"{attempts} attempts (HTTP 409 Conflict; another writer is updating it); will be retried",
        namespace=namespace,
        name=name,
        status=409,
    )


def server_message(error: ApiException) -> str:
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
