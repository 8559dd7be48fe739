"""Finding the cluster: the API client a runtime builds from its pod or its kubeconfig.

The kubernetes client (and urllib3 under it) take most of a second to import, so they
are imported here only when a client is built: a process in CLI mode, or one that just
validates a config, never pays for them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vmcp_actors.errors import KubernetesConfigError

if TYPE_CHECKING:
    from kubernetes import client

__all__ = ["load_api_client"]


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
    import urllib3
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
