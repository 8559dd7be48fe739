"""API failures on Leases and Events, translated the way the status reporter translates its own.

A 403 names who lacks which verb on which resource and the Role that grants it; a 401
says the credentials were refused; no answer, 429 and 5xx are transient.  The wording
and the error types are the status reporter's
(:mod:`vmcp_actors.reporting.kubernetes.reporter`), and so is the extraction of the API
server's own message, so an operator reads one style of log line for every resource the
runtime touches.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from vmcp_actors.errors import (
    KubernetesError,
    KubernetesNotFoundError,
    KubernetesPermissionError,
    KubernetesTransientError,
)
from vmcp_actors.reporting.kubernetes.errors import server_message

if TYPE_CHECKING:
    from kubernetes.client import ApiException

__all__ = ["Conflict", "api_error", "server_message", "unreachable"]

_FORBIDDEN_USER: Final = re.compile(r'User "([^"]+)"')


class Conflict(Exception):
    """HTTP 409: a compare-and-swap lost, or a create found the object already there."""


def api_error(
    verb: str, error: ApiException, *, kind: str, resource: str, group: str, namespace: str, name: str
) -> Exception:
    """The error for the API server's answer ``error`` to ``verb`` on ``kind`` ``namespace/name``."""
    code = int(error.status) if isinstance(error.status, int) else None
    detail = server_message(error)
    where = f"{kind} {namespace}/{name}"
    if code == 409:
        return Conflict(detail)
    if code == 403:
        match = _FORBIDDEN_USER.search(detail)
        who = match.group(1) if match else "the service account"
        return KubernetesPermissionError(
            f"forbidden: {who} cannot {verb} {resource} in namespace {namespace} — grant {verb!r} on "
            f"{resource!r} (apiGroup {group}) in a Role bound to it in that namespace (see deploy/rbac/role.yaml)"
            f"; the API server said: {detail}",
            namespace=namespace,
            name=name,
            verb=verb,
            resource=resource,
            group=group,
        )
    if code == 404:
        return KubernetesNotFoundError(
            f"{where} does not exist (HTTP 404 on {verb}): {detail}", status=code, namespace=namespace, name=name
        )
    if code == 401:
        return KubernetesError(
            f"unauthorized: the API server rejected the credentials used to {verb} {where} "
            f"(expired or invalid token or certificate?): {detail}",
            status=code,
            namespace=namespace,
            name=name,
        )
    if code is None or code == 429 or code >= 500:
        return KubernetesTransientError(
            f"the Kubernetes API server could not {verb} {where} now (HTTP {code}): {detail}; will be retried",
            status=code,
            namespace=namespace,
            name=name,
        )
    return KubernetesError(
        f"the Kubernetes API server rejected the {verb} of {where} (HTTP {code}): {detail}",
        status=code,
        namespace=namespace,
        name=name,
    )


def unreachable(verb: str, error: Exception, *, kind: str, namespace: str, name: str) -> KubernetesTransientError:
    """No answer at all to ``verb``: transient, tried again later."""
    return KubernetesTransientError(
        f"cannot reach the Kubernetes API server to {verb} {kind} {namespace}/{name}: "
        f"{type(error).__name__}: {error}; will be retried",
        namespace=namespace,
        name=name,
    )
