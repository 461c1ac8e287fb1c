"""What enforces the ACLs, without a broker: the secured broker's config and TLS files, and
the typed errors security refusals become."""

from __future__ import annotations

import ssl
from pathlib import Path

from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from cryptography import x509

from exchange import AuthenticationError, AuthorizationError, BrokerError, TlsError
from exchange._kafka import connection_error, translate_kafka_error
from exchange._local_broker_config import BrokerLayout, parse_properties, render_config
from exchange._local_broker_security import BrokerSecurity, ScramUser, write_tls_files

LAYOUT = BrokerLayout(port=9093, controller_port=9094, cluster_id="x" * 22, kafka_version="4.4.0")


def _security(tmp_path: Path) -> BrokerSecurity:
    users = (ScramUser("TAX", "tax-pw"),)
    return BrokerSecurity(write_tls_files(tmp_path), ScramUser("admin", "admin-pw"), users)


def test_the_secured_broker_listens_only_with_sasl_ssl_and_denies_what_no_acl_allows(
    tmp_path: Path,
) -> None:
    """The client listener is SASL_SSL with SCRAM-SHA-512, the controller's is TLS with client
    certificates, the authorizer denies by default, and the admin is the super user."""
    security = _security(tmp_path)
    config = parse_properties(render_config(LAYOUT, tmp_path / "data", security.properties(LAYOUT)))
    assert config["listeners"] == "SECURE://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert config["listener.security.protocol.map"] == "SECURE:SASL_SSL,CONTROLLER:SSL"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["authorizer.class.name"].endswith("StandardAuthorizer")
    assert config["super.users"] == "User:admin;User:CN=localhost"
    assert config["offsets.topic.replication.factor"] == "1"  # the plain defaults stay


def test_the_plain_broker_config_is_unchanged_without_overrides(tmp_path: Path) -> None:
    """No security: one PLAINTEXT listener, as `exchange broker start` always wrote."""
    config = parse_properties(render_config(LAYOUT, tmp_path / "data"))
    assert config["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name" not in config


def test_every_scram_user_is_added_when_the_data_dir_is_formatted(tmp_path: Path) -> None:
    """kafka-storage format gets one --add-scram per user, the admin first."""
    assert _security(tmp_path).format_args() == [
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=admin-pw]",
        "--add-scram",
        "SCRAM-SHA-512=[name=TAX,password=tax-pw]",
    ]


def test_the_broker_certificate_is_trusted_through_the_ca_for_its_local_names(
    tmp_path: Path,
) -> None:
    """The CA signs the broker's certificate, which names 127.0.0.1 and localhost; the key
    file starts with an unencrypted PKCS#8 key, as Kafka's PEM keystore reads it."""
    files = write_tls_files(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    text = files.keystore.read_bytes()
    assert text.startswith(b"-----BEGIN PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(text[text.index(b"-----BEGIN CERTIFICATE-----") :])
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert files.keystore.stat().st_mode & 0o077 == 0


def test_authorization_refusals_become_authorization_errors_naming_the_resource() -> None:
    """Topic and group refusals: AuthorizationError, not retriable, with what was refused."""
    topic = translate_kafka_error(TopicAuthorizationFailedError("bus.replies.NOCR"), "cannot go")
    group = translate_kafka_error(GroupAuthorizationFailedError("bus.provider.NOCR"), "cannot")
    assert isinstance(topic, AuthorizationError)
    assert isinstance(group, AuthorizationError)
    assert (topic.resource, group.resource) == ("topic bus.replies.NOCR", "group bus.provider.NOCR")
    assert not topic.retriable
    assert topic.message.startswith("cannot go: not authorized (topic bus.replies.NOCR)")


def test_sasl_and_tls_failures_become_their_own_errors() -> None:
    """A refused password is an AuthenticationError, a failed handshake a TlsError."""
    sasl = translate_kafka_error(SaslAuthenticationFailed("invalid credentials"), "cannot")
    tls = translate_kafka_error(ssl.SSLCertVerificationError("verify failed"), "cannot")
    assert isinstance(sasl, AuthenticationError)
    assert isinstance(tls, TlsError)
    assert "EXCHANGE_SSL_CAFILE" in tls.message


async def test_a_plaintext_connection_failure_stays_a_retriable_broker_error() -> None:
    """Without security there is nothing to diagnose: a BrokerError that may be retried."""
    error = await connection_error(
        KafkaConnectionError("Unable to bootstrap"),
        "cannot connect",
        "127.0.0.1:1",
        {"security_protocol": "PLAINTEXT"},
    )
    assert type(error) is BrokerError
    assert error.retriable
