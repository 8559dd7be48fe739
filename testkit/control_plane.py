"""A real Kubernetes control plane (etcd + kube-apiserver on loopback) for integration tests.

Why a real server: the behaviour the project depends on (the spec/status split, CRD schema
validation with 422s, list-map keys, resourceVersion conflicts with 409s, RBAC with 403s,
ServiceAccount tokens from the TokenRequest API) is exactly what in-process fakes get wrong.

The setup mirrors controller-runtime's envtest: etcd with ``--unsafe-no-fsync`` in a temporary
directory, kube-apiserver with TLS from a throwaway CA, RBAC authorisation, an admin client
certificate in ``system:masters`` and a ServiceAccount signing key. No controller manager runs, so
nothing creates default ServiceAccounts and deleted namespaces stay ``Terminating``.

Processes are started with a parent-death signal and stopped by :meth:`ControlPlane.stop`, which
is also registered with :mod:`atexit`, so a crashed or interrupted test run leaves no orphans.

This module wires the parts together (ports, flags, restarts on the same port, clients and
credentials); the parts live beside it: :mod:`testkit.plane_process` (child processes and
waiting), :mod:`testkit.kube_pki` (the CA and keys), :mod:`testkit.kube_etcd` (etcd),
:mod:`testkit.kube_rest` (raw requests) and :mod:`testkit.manifests` (applying ``deploy/``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import ssl
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from testkit.kube_etcd import start_etcd
from testkit.kube_pki import Pki
from testkit.kube_rest import request_json
from testkit.manifests import create_or_replace
from testkit.plane_process import LOOPBACK, ChildProcess, ControlPlaneError, free_port, poll_until

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlane:
    """etcd + kube-apiserver on loopback, envtest style.

    Usage::

        plane = ControlPlane(binaries_dir)
        plane.start()
        try:
            api = plane.admin_api_client()
            ...
        finally:
            plane.stop()

    ``binaries_dir`` holds ``etcd`` and ``kube-apiserver`` (see ``scripts/envtest.py``). The API
    server can be stopped and started again on the same port and etcd data, for tests of
    behaviour while the API is unavailable.
    """

    def __init__(
        self,
        binaries_dir: Path,
        *,
        workdir: Path | None = None,
        startup_timeout: float = 60.0,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self.binaries_dir = Path(binaries_dir)
        self.startup_timeout = startup_timeout
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="vmcp-kube-")) if workdir is None else Path(workdir)
        self.host = LOOPBACK
        self.port = 0
        self.etcd_port = 0
        self._etcd: ChildProcess | None = None
        self._apiserver: ChildProcess | None = None
        self._pki: Pki | None = None
        self._clients: list[client.ApiClient] = []
        self._admin: client.ApiClient | None = None
        self._ssl: ssl.SSLContext | None = None
        self._stopped = True

    # -- addresses and credentials -------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the API server."""
        return f"https://{self.host}:{self.port}"

    @property
    def pki(self) -> Pki:
        """The generated certificates; only available after :meth:`start`."""
        if self._pki is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._pki

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the API server's serving certificate."""
        return self.pki.ca_file

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start etcd and the API server and wait until the API server reports ready.

        On any failure everything already started is stopped before the error propagates.
        """
        self._stopped = False
        atexit.register(self.stop)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._pki = Pki(self.workdir)
            self._ssl = None
            self._etcd, self.etcd_port = start_etcd(self._binary("etcd"), self.workdir, timeout=self.startup_timeout)
            self.port = 0
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise

    def _binary(self, name: str) -> str:
        path = self.binaries_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ControlPlaneError(f"{name} is missing: no executable at {path}")
        return str(path)

    def _apiserver_argv(self) -> list[str]:
        pki = self.pki
        return [
            self._binary("kube-apiserver"),
            f"--etcd-servers=http://{LOOPBACK}:{self.etcd_port}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert_file}",
            f"--tls-private-key-file={pki.serving_key_file}",
            f"--client-ca-file={pki.ca_file}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub_file}",
            f"--service-account-signing-key-file={pki.sa_key_file}",
            "--allow-privileged=true",
            "--v=1",
            *self.extra_apiserver_args,
        ]

    def start_apiserver(self) -> None:
        """Start the API server (on the same port as before, if it ran before) and wait for ready.

        The first start picks a free port and retries with another one if it was taken in the
        meantime; later starts reuse the port so existing clients reconnect transparently.
        """
        if self._etcd is None:
            raise ControlPlaneError("etcd is not running; call start() first")
        if self._apiserver is not None and not self._apiserver.exited():
            raise ControlPlaneError("the API server is already running")
        keep_port = self.port != 0
        attempts = 1 if keep_port else 3
        for attempt in range(attempts):
            if not keep_port:
                self.port = free_port()
            process = ChildProcess("kube-apiserver", self._apiserver_argv(), self.workdir / "kube-apiserver.log")
            self._apiserver = process
            try:
                poll_until(
                    self._apiserver_ready,
                    timeout=self.startup_timeout,
                    what=f"kube-apiserver on {self.url} to become ready",
                    on_wait=process.fail_if_exited,
                )
                return
            except ControlPlaneError:
                process.stop()
                retry = attempt + 1 < attempts and "address already in use" in process.log_tail()
                if not retry:
                    raise

    def stop_apiserver(self, *, graceful: bool = True) -> None:
        """Stop the API server, keeping etcd (and so all stored objects) and the port number.

        ``graceful=False`` sends SIGKILL at once, like a crash: no graceful-termination period
        (about a second) and connections are cut instead of drained.
        """
        if self._apiserver is not None:
            self._apiserver.stop(graceful=graceful)

    def restart_apiserver(self) -> None:
        """Stop the API server and start it again on the same port with the same data."""
        self.stop_apiserver()
        self.start_apiserver()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context(cafile=str(self.pki.ca_file))
            context.load_cert_chain(str(self.pki.admin_cert_file), str(self.pki.admin_key_file))
            self._ssl = context
        return self._ssl

    def _apiserver_ready(self) -> bool | None:
        """Probe ``/readyz`` as admin: 200 once storage, RBAC bootstrap and post-start hooks are done."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2, context=self._ssl_context()) as response:
                return True if response.status == 200 else None
        except (OSError, http.client.HTTPException):
            return None

    def stop(self) -> None:
        """Stop every process (API server first, then etcd) and remove the working directory.

        Safe to call repeatedly and from :mod:`atexit`; every step runs even if an earlier one
        fails, and the first error is re-raised at the end.
        """
        if self._stopped:
            return
        self._stopped = True
        errors: list[BaseException] = []
        for api in self._clients:
            try:
                api.close()  # type: ignore[no-untyped-call]
            except Exception as error:
                errors.append(error)
        self._clients.clear()
        self._admin = None
        for process in (self._apiserver, self._etcd):
            if process is None:
                continue
            try:
                process.stop()
            except BaseException as error:
                errors.append(error)
        self._apiserver = None
        self._etcd = None
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if errors:
            raise errors[0]

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------------------------

    def _configuration(self) -> client.Configuration:
        return client.Configuration(host=self.url, ssl_ca_cert=str(self.pki.ca_file))

    def _track(self, api: client.ApiClient) -> client.ApiClient:
        self._clients.append(api)
        return api

    def admin_api_client(self) -> client.ApiClient:
        """Return a new client authenticated with the ``system:masters`` client certificate.

        The control plane closes it in :meth:`stop`.
        """
        configuration = self._configuration()
        configuration.cert_file = str(self.pki.admin_cert_file)
        configuration.key_file = str(self.pki.admin_key_file)
        return self._track(client.ApiClient(configuration))

    def _admin_client(self) -> client.ApiClient:
        if self._admin is None:
            self._admin = self.admin_api_client()
        return self._admin

    def token_api_client(self, token: str) -> client.ApiClient:
        """Return a new client authenticated with a bearer token."""
        configuration = self._configuration()
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return self._track(client.ApiClient(configuration))

    def service_account_token(self, namespace: str, sa_name: str, *, expiration_seconds: int = 3600) -> str:
        """Issue a token for an existing ServiceAccount through the TokenRequest API."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        response = client.CoreV1Api(self._admin_client()).create_namespaced_service_account_token(
            sa_name, namespace, request
        )
        if response.status is None or not response.status.token:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{sa_name} returned no token")
        return response.status.token

    def service_account_api_client(self, namespace: str, sa_name: str) -> client.ApiClient:
        """Return a client acting as ServiceAccount ``namespace/sa_name`` (which must exist)."""
        return self.token_api_client(self.service_account_token(namespace, sa_name))

    def write_kubeconfig(self, path: Path, *, token: str | None = None, namespace: str | None = None) -> Path:
        """Write a kubeconfig for this server and return ``path``.

        With ``token`` the user authenticates with it (e.g. a ServiceAccount token); without, with
        the admin client certificate. ``namespace`` sets the context's default namespace.
        """
        user: dict[str, str]
        if token is None:
            user = {
                "client-certificate": str(self.pki.admin_cert_file),
                "client-key": str(self.pki.admin_key_file),
            }
        else:
            user = {"token": token}
        context: dict[str, str] = {"cluster": "envtest", "user": "envtest-user"}
        if namespace is not None:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "envtest-user", "user": user}],
            "contexts": [{"name": "envtest", "context": context}],
            "current-context": "envtest",
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- manifests -----------------------------------------------------------------------------

    def apply_manifest(self, path: Path, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Create, or replace if it exists, every object in the YAML file ``path``.

        Supports the kinds in ``deploy/``: CustomResourceDefinition, Namespace, ServiceAccount,
        Role and RoleBinding. Namespaced objects without ``metadata.namespace`` go into
        ``namespace``. Returns the objects as the server stored them.
        """
        documents = [doc for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if doc]
        return [self.apply_object(doc, namespace=namespace) for doc in documents]

    def apply_object(self, obj: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Create-or-replace one object given as a dict (see :meth:`apply_manifest`)."""
        return create_or_replace(self._admin_client(), obj, namespace=namespace)

    def wait_crd_established(self, name: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until CRD ``name`` has condition ``Established=True``; return the CRD."""
        api = self._admin_client()
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"

        def established() -> dict[str, Any] | None:
            crd = request_json(api, "GET", path)
            for condition in crd.get("status", {}).get("conditions", []) or []:
                if condition.get("type") == "Established" and condition.get("status") == "True":
                    return crd
            return None

        return poll_until(established, timeout=timeout, what=f"CRD {name} to be Established")
