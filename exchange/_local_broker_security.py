"""A secured variant of the local broker: SASL/SCRAM over TLS, with Kafka's own authorizer.

What production runs (DESIGN.md "Security model"), on one node, so tests can prove the ACLs
the catalog implies against a real broker::

    SECURE      127.0.0.1:<port>     SASL_SSL, SCRAM-SHA-512; clients and the inter-broker link
    CONTROLLER  127.0.0.1:<port>     SSL with client certificates (KRaft controllers cannot
                                     use SCRAM: the credentials live in the metadata they serve)

``StandardAuthorizer`` denies whatever no ACL allows; ``super_users`` are the SCRAM admin and
the broker's own certificate (its link to the controller). The SCRAM credentials are written
into the metadata when the data dir is formatted (``--add-scram``), so they exist before the
broker serves its first request. :func:`write_tls_files` makes a throw-away CA and a broker
certificate for 127.0.0.1/localhost in PEM, which Kafka reads as is (``ssl.keystore.type=PEM``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange._local_broker_config import BrokerLayout

__all__ = ["BrokerSecurity", "ScramUser", "TlsFiles", "write_tls_files"]

MECHANISM = "SCRAM-SHA-512"
#: Subject of the broker's certificate; also its principal on the controller listener.
BROKER_CN = "localhost"


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user created when the data dir is formatted."""

    name: str
    password: str

    @property
    def principal(self) -> str:
        """``User:<name>``, as the authorizer sees it."""
        return f"User:{self.name}"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a CA and of one broker certificate signed by it."""

    ca_cert: Path
    keystore: Path  # the broker's private key (PKCS#8, unencrypted) then its certificate

    @property
    def truststore(self) -> Path:
        """What both sides trust: the CA alone."""
        return self.ca_cert


@dataclass(frozen=True)
class BrokerSecurity:
    """How the secured local broker listens and whom it knows; see the module docstring."""

    tls: TlsFiles
    admin: ScramUser
    users: tuple[ScramUser, ...] = ()

    @property
    def super_users(self) -> str:
        """``super.users``: the admin and the broker's own certificate principal."""
        return f"{self.admin.principal};User:CN={BROKER_CN}"

    def properties(self, layout: BrokerLayout) -> dict[str, str]:
        """``server.properties`` entries that replace the plain listener (see the docstring)."""
        controller = f"127.0.0.1:{layout.controller_port}"
        secure = f"SECURE://{layout.bootstrap}"
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.admin.name}" password="{self.admin.password}";'
        )
        return {
            "listeners": f"{secure},CONTROLLER://{controller}",
            "advertised.listeners": f"{secure},CONTROLLER://{controller}",
            "listener.security.protocol.map": "SECURE:SASL_SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "SECURE",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.secure.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "listener.name.controller.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.truststore),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": self.super_users,
        }

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create every SCRAM user."""
        args: list[str] = []
        for user in (self.admin, *self.users):
            args += ["--add-scram", f"{MECHANISM}=[name={user.name},password={user.password}]"]
        return args

    def admin_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments of the admin (readiness probe, ACL set-up)."""
        return self.client_options(self.admin)

    def client_options(self, user: ScramUser) -> dict[str, Any]:
        """aiokafka keyword arguments of ``user``, verifying the broker against the CA."""
        from aiokafka.helpers import create_ssl_context

        return {
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=str(self.tls.ca_cert)),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": user.name,
            "sasl_plain_password": user.password,
        }


def write_tls_files(folder: Path, *, days: int = 7) -> TlsFiles:
    """A fresh CA and a broker certificate for 127.0.0.1 and localhost, as PEM in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exchange local test CA")])
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, days=days, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)])
    cert = _certificate(subject, ca_name, key.public_key(), ca_key, days=days, ca=False)
    files = TlsFiles(ca_cert=folder / "ca.pem", keystore=folder / "broker-keystore.pem")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files.keystore.write_bytes(private + cert.public_bytes(serialization.Encoding.PEM))
    files.keystore.chmod(0o600)
    return files


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    days: int,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(_broker_names(("localhost",), ("127.0.0.1",)), False)
        # The broker's certificate serves its listeners and identifies it to the controller.
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _broker_names(hosts: Sequence[str], addresses: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    return x509.SubjectAlternativeName(names)
