"""``new_reporter()``: choose the status sink from the environment, as toolhive's factory does.

The operator sets ``VMCP_NAME`` and ``VMCP_NAMESPACE`` on the runtime's container; with
both present the status goes to that ``VirtualMCPServer`` (:class:`K8sReporter`),
otherwise it is only logged (CLI mode).  Unlike toolhive, exactly one of the two being
set is called out with a warning naming the missing one, since that is a deployment
mistake that would otherwise silently leave the CRD's status stale; and a failure to
load any cluster config is an error that says what was tried.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Final

from vmcp_actors.errors import KubernetesConfigError, ValidationError
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.protocol import Reporter
from vmcp_actors.reporting.sinks import LoggingReporter

__all__ = ["ENV_VMCP_NAME", "ENV_VMCP_NAMESPACE", "new_reporter"]

log = logging.getLogger(__name__)

ENV_VMCP_NAME: Final = "VMCP_NAME"
ENV_VMCP_NAMESPACE: Final = "VMCP_NAMESPACE"


def new_reporter(env: Mapping[str, str] = os.environ, **k8s_options: Any) -> Reporter:
    """The reporter for this process: :class:`K8sReporter` in Kubernetes mode, else logging.

    ``k8s_options`` go to :class:`K8sReporter` (``qps``, ``burst``, ...).  Raises
    :class:`~vmcp_actors.errors.KubernetesConfigError` when both variables are set but no
    cluster config can be loaded, and :class:`~vmcp_actors.errors.ValidationError`
    (naming the variable) when a value is not a valid Kubernetes name.
    """
    name = env.get(ENV_VMCP_NAME) or ""
    namespace = env.get(ENV_VMCP_NAMESPACE) or ""
    if name and namespace:
        try:
            return K8sReporter(name, namespace, environ=env, **k8s_options)
        except KubernetesConfigError as error:
            raise KubernetesConfigError(
                f"failed to create the Kubernetes status reporter for VirtualMCPServer {namespace}/{name} "
                f"({ENV_VMCP_NAME} and {ENV_VMCP_NAMESPACE} are set): {error}",
                namespace=namespace,
                name=name,
            ) from error
        except ValidationError as error:
            variable = {"name": ENV_VMCP_NAME, "namespace": ENV_VMCP_NAMESPACE}.get(error.field)
            if variable is None:
                raise
            raise ValidationError(variable, str(error).split(": ", 1)[-1], error.value) from error
    if name or namespace:
        present, missing = (ENV_VMCP_NAME, ENV_VMCP_NAMESPACE) if name else (ENV_VMCP_NAMESPACE, ENV_VMCP_NAME)
        log.warning(
            "%s is set but %s is not: the status will only be logged, not written to the VirtualMCPServer "
            "(set both to report to Kubernetes)",
            present,
            missing,
        )
    return LoggingReporter()
