"""A throwaway certificate authority and the keys a test kube-apiserver needs from it.

Why apart: the API server is run with TLS, client-certificate authentication and ServiceAccount
token signing exactly as in a cluster, so the tests exercise real authentication; minting those
credentials is pure cryptography that the process wiring in :mod:`testkit.control_plane` only
has to point flags at.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testkit.plane_process import LOOPBACK


class Pki:
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
