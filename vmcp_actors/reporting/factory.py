"""``new_reporter()``: choose the status sink from the environment, as toolhive's factory does.

The operator sets ``VMCP_NAME`` and ``VMCP_NAMESPACE`` on the runtime's container; with
both present the status goes to that ``VirtualMCPServer`` (:class:`K8sReporter`),
otherwise it is only logged (CLI mode).  Two more variables tune the Kubernetes sink:
``VMCP_STATUS_LAYOUT`` (``runtime`` or ``legacy``) overrides the layout the API server's
answer would choose, and ``VMCP_OBSERVED_GENERATION`` is the ``metadata.generation`` the
operator rendered the runtime's config from (without it, observedGeneration is left to
the operator).  Unlike toolhive, exactly one of the two being
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
from vmcp_actors.model.status import INT64_MAX
from vmcp_actors.reporting.kubernetes.mapping import StatusLayout
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.protocol import Reporter
from vmcp_actors.reporting.sinks import LoggingReporter

__all__ = [
    "ENV_OBSERVED_GENERATION",
    "ENV_STATUS_LAYOUT",
    "ENV_VMCP_NAME",
    "ENV_VMCP_NAMESPACE",
    "new_reporter",
]

log = logging.getLogger(__name__)

ENV_VMCP_NAME: Final = "VMCP_NAME"
ENV_VMCP_NAMESPACE: Final = "VMCP_NAMESPACE"
ENV_STATUS_LAYOUT: Final = "VMCP_STATUS_LAYOUT"
ENV_OBSERVED_GENERATION: Final = "VMCP_OBSERVED_GENERATION"


def new_reporter(env: Mapping[str, str] = os.environ, **k8s_options: Any) -> Reporter:
    """The reporter for this process: :class:`K8sReporter` in Kubernetes mode, else logging.

    ``k8s_options`` go to :class:`K8sReporter` (``qps``, ``burst``, ...) and win over
    ``VMCP_STATUS_LAYOUT``/``VMCP_OBSERVED_GENERATION``.  Raises
    :class:`~vmcp_actors.errors.KubernetesConfigError` when both variables are set but no
    cluster config can be loaded, and :class:`~vmcp_actors.errors.ValidationError`
    (naming the variable) when a value is not a valid Kubernetes name, layout or generation.
    """
    name = env.get(ENV_VMCP_NAME) or ""
    namespace = env.get(ENV_VMCP_NAMESPACE) or ""
    if name and namespace:
        options = {**_k8s_env_options(env), **k8s_options}
        try:
            return K8sReporter(name, namespace, environ=env, **options)
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


def _k8s_env_options(env: Mapping[str, str]) -> dict[str, Any]:
    """``layout`` and ``observed_generation`` from the environment, each checked and named when wrong."""
    options: dict[str, Any] = {}
    layout = (env.get(ENV_STATUS_LAYOUT) or "").strip()
    if layout:
        try:
            options["layout"] = StatusLayout(layout.lower())
        except ValueError:
            allowed = ", ".join(member.value for member in StatusLayout)
            raise ValidationError(
                ENV_STATUS_LAYOUT, f"must be one of {allowed} (or unset), got {layout!r}", layout
            ) from None
    generation = (env.get(ENV_OBSERVED_GENERATION) or "").strip()
    if generation:
        if not generation.isascii() or not generation.isdigit() or not 1 <= int(generation) <= INT64_MAX:
            raise ValidationError(
                ENV_OBSERVED_GENERATION,
                f"must be a positive integer (a metadata.generation), got {generation!r}",
                generation,
            )
        options["observed_generation"] = int(generation)
    return options
