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
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime
import functools
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

LOOPBACK = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
#: Interval between readiness probes; the only sleeping this module does.
POLL_INTERVAL_S = 0.05
#: Grace period between SIGTERM and SIGKILL when stopping a process.
STOP_TIMEOUT_S = 10.0
#: How many log lines of a failed process to quote in an error.
LOG_TAIL_LINES = 30

_T = TypeVar("_T")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL the child when the process that started it dies.

    Runs in the child between fork and exec. It covers what :mod:`atexit` cannot: the test
    runner being killed with SIGKILL. Linux only; elsewhere it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, or an operation on it timed out."""


def poll_until(
    check: Callable[[], _T | None], *, timeout: float, what: str, on_wait: Callable[[], None] | None = None
) -> _T:
    """Call ``check`` until it returns something other than ``None``; fail after ``timeout``.

    ``on_wait`` runs between attempts (for example to notice that a process died, so a crash is
    reported at once instead of as a timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")
        if on_wait is not None:
            on_wait()
        time.sleep(POLL_INTERVAL_S)


class _Pki:
    """A throwaway CA with the serving, admin client and ServiceAccount keys the server needs.

    ECDSA P-256 keys keep generation in the millisecond range.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        now = datetime.datetime.now(datetime.UTC)
        self._not_before = now - datetime.timedelta(minutes=5)
        self._not_after = now + datetime.timedelta(days=2)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmcp-actors-test-ca")])
        self._ca_name = ca_name
        ca_cert = (
            self._builder(ca_name, self._ca_key)
            .issuer_name(ca_name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_file = self._write_cert("ca.crt", ca_cert)
        self.serving_cert_file, self.serving_key_file = self._leaf(
            "serving",
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                    x509.DNSName("kubernetes.default.svc"),
                ]
            ),
        )
        self.admin_cert_file, self.admin_key_file = self._leaf(
            "admin",
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "vmcp-actors-admin"),
                ]
            ),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            None,
        )
        sa_key = ec.generate_private_key(ec.SECP256R1())
        self.sa_key_file = self._write_key("sa.key", sa_key)
        self.sa_pub_file = directory / "sa.pub"
        self.sa_pub_file.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _builder(self, subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
        )

    def _leaf(
        self,
        name: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            self._builder(subject, key)
            .issuer_name(self._ca_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        return self._write_cert(f"{name}.crt", cert), self._write_key(f"{name}.key", key)

    def _write_cert(self, name: str, cert: x509.Certificate) -> Path:
        path = self.directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _write_key(self, name: str, key: ec.EllipticCurvePrivateKey) -> Path:
        path = self.directory / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path


class _Process:
    """One child process with its log file, stoppable exactly once and idempotently."""

    def __init__(self, name: str, argv: list[str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        self._log = log_file.open("ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        except OSError:
            self._log.close()
            raise

    def exited(self) -> bool:
        """Tell whether the process has terminated."""
        return self.popen.poll() is not None

    def log_tail(self) -> str:
        """Return the last lines of the process log, for error messages."""
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def fail_if_exited(self) -> None:
        """Raise with the log tail if the process died (a crash should not look like a timeout)."""
        code = self.popen.poll()
        if code is not None:
            raise ControlPlaneError(
                f"{self.name} exited with status {code}; last log lines ({self.log_file}):\n{self.log_tail()}"
            )

    def stop(self, *, graceful: bool = True, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL (SIGKILL at once if not ``graceful``).

        Always reaps the process and closes the log, so no zombie or file handle is left.
        """
        try:
            if self.popen.poll() is None:
                if graceful:
                    self.popen.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):  # then it is killed below
                        self.popen.wait(timeout=timeout)
                        return
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        finally:
            self._log.close()


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
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._pki: _Pki | None = None
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
    def pki(self) -> _Pki:
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
            self._pki = _Pki(self.workdir)
            self._ssl = None
            self._start_etcd()
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

    def _start_etcd(self) -> None:
        data_dir = self.workdir / "etcd-data"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        last_error: ControlPlaneError | None = None
        for _ in range(3):
            client_port, peer_port = free_port(), free_port()
            client_url = f"http://{LOOPBACK}:{client_port}"
            peer_url = f"http://{LOOPBACK}:{peer_port}"
            process = _Process(
                "etcd",
                [
                    self._binary("etcd"),
                    "--name=default",
                    f"--data-dir={data_dir}",
                    f"--listen-client-urls={client_url}",
                    f"--advertise-client-urls={client_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=default={peer_url}",
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
                self.workdir / "etcd.log",
            )
            self._etcd = process
            try:
                poll_until(
                    functools.partial(self._etcd_healthy, client_url),
                    timeout=self.startup_timeout,
                    what="etcd to become healthy",
                    on_wait=process.fail_if_exited,
                )
            except ControlPlaneError as error:
                process.stop()
                self._etcd = None
                last_error = error
                if "address already in use" not in process.log_tail():
                    raise
                continue
            self.etcd_port = client_port
            return
        raise ControlPlaneError(f"etcd could not bind free ports: {last_error}")

    @staticmethod
    def _etcd_healthy(url: str) -> bool | None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                body = json.loads(response.read())
        except (OSError, ValueError, http.client.HTTPException):
            return None
        return True if isinstance(body, dict) and body.get("health") == "true" else None

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
            process = _Process("kube-apiserver", self._apiserver_argv(), self.workdir / "kube-apiserver.log")
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
        kind = obj.get("kind")
        body: dict[str, Any] = json.loads(json.dumps(obj))
        metadata: dict[str, Any] = body.setdefault("metadata", {})
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ControlPlaneError(f"{kind} without metadata.name")
        api = self._admin_client()
        rest = _RestResource.for_kind(str(kind), str(body.get("apiVersion", "")))
        if rest.namespaced:
            metadata.setdefault("namespace", namespace)
            if not metadata["namespace"]:
                raise ControlPlaneError(f"{kind} {name} needs a namespace")
        path = rest.path(metadata.get("namespace"))
        try:
            return _request_json(api, "POST", path, body)
        except client.ApiException as error:
            if error.status != 409:
                raise
        current = _request_json(api, "GET", f"{path}/{name}")
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return _request_json(api, "PUT", f"{path}/{name}", body)

    def wait_crd_established(self, name: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until CRD ``name`` has condition ``Established=True``; return the CRD."""
        api = self._admin_client()
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"

        def established() -> dict[str, Any] | None:
            crd = _request_json(api, "GET", path)
            for condition in crd.get("status", {}).get("conditions", []) or []:
                if condition.get("type") == "Established" and condition.get("status") == "True":
                    return crd
            return None

        return poll_until(established, timeout=timeout, what=f"CRD {name} to be Established")


class _RestResource:
    """Where the REST API keeps one of the kinds :meth:`ControlPlane.apply_manifest` supports."""

    _KINDS: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
        "Namespace": ("/api/v1", "namespaces", False),
        "ServiceAccount": ("/api/v1", "serviceaccounts", True),
        "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
        "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
        "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
        "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    }

    def __init__(self, prefix: str, plural: str, namespaced: bool) -> None:
        self.prefix = prefix
        self.plural = plural
        self.namespaced = namespaced

    @classmethod
    def for_kind(cls, kind: str, api_version: str) -> _RestResource:
        entry = cls._KINDS.get(kind)
        if entry is None:
            raise ControlPlaneError(f"apply_manifest does not support kind {kind!r}")
        prefix, plural, namespaced = entry
        expected = prefix.removeprefix("/apis/").removeprefix("/api/")
        if api_version != expected:
            raise ControlPlaneError(f"{kind} must have apiVersion {expected}, not {api_version!r}")
        return cls(prefix, plural, namespaced)

    def path(self, namespace: str | None) -> str:
        if self.namespaced:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"


@dataclass(frozen=True)
class RawResponse:
    """An HTTP response read in full: status, body bytes and headers (names lower-cased)."""

    status: int
    data: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.data or b"null")


def _request_json(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one JSON request through ``api`` and return the decoded JSON object."""
    decoded = raw_request(api, method, path, body).json()
    if not isinstance(decoded, dict):
        raise ControlPlaneError(f"{method} {path} returned non-object JSON")
    return decoded


def raw_request(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    """Send one request through ``api`` (with its TLS and auth settings) and return the response.

    Below the typed API classes: it works for any kind given as a plain dict and lets a test set
    ``Accept`` (Table output) or read response headers (``Warning``). Non-2xx statuses raise the
    same :class:`kubernetes.client.ApiException` subclasses as the typed methods.
    """
    header_params: dict[str, str] = {"Accept": "application/json"}
    if body is not None:
        header_params["Content-Type"] = "application/json"
    header_params.update(headers or {})
    method_, url, header_params_, body_, post_params = api.param_serialize(
        method=method,
        resource_path=path,
        header_params=header_params,
        body=dict(body) if body is not None else None,
        auth_settings=["BearerToken"],
    )
    # RESTResponse is untyped in kubernetes 37.x; read() fills .data, which from_response needs.
    response: Any = api.call_api(method_, url, header_params_, body_, post_params)
    data: bytes = response.read()
    if not 200 <= response.status <= 299:
        raise client.ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
    return RawResponse(
        status=response.status, data=data, headers={str(k).lower(): str(v) for k, v in response.headers.items()}
    )


def iter_manifests(directory: Path) -> Iterator[Path]:
    """Yield the YAML manifests under ``directory`` in a stable order (CRDs first)."""
    files = sorted(Path(directory).rglob("*.yaml"))
    yield from (path for path in files if path.parent.name == "crd")
    yield from (path for path in files if path.parent.name != "crd" and path.name != "kustomization.yaml")
