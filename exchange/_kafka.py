"""Where Kafka is and how to talk to it, for every component of the bus.

Every producer, consumer and admin client of the bus is built the same way::

    AIOKafkaProducer(bootstrap_servers=resolve_bootstrap(settings), **client_options(settings))

``resolve_bootstrap`` prefers ``EXCHANGE_KAFKA_BOOTSTRAP`` (an existing cluster) and otherwise
finds the local broker that ``exchange broker start`` recorded in the state dir.
``client_options`` turns the security settings into aiokafka keyword arguments.

Security failures become typed errors (:class:`~exchange.KafkaSecurityError` and below):
:func:`translate_kafka_error` maps aiokafka's authorization and SASL errors, and
:func:`connection_error` looks behind aiokafka's bare "Unable to bootstrap": its bootstrap
logs the real cause (a refused password, an untrusted certificate) and raises without it, so
one direct connection is tried again to name it.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from exchange._errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerError,
    ConfigError,
    TlsError,
)
from exchange._kafka_probe import ClusterInfo, check_reachable
from exchange._local_broker import LocalBroker, local_broker_home
from exchange._settings import ExchangeSettings

__all__ = [
    "ClusterInfo",
    "check_reachable",
    "client_options",
    "connection_error",
    "error_for_code",
    "kafka_options",
    "resolve_bootstrap",
    "translate_kafka_error",
]


def resolve_bootstrap(settings: ExchangeSettings) -> str:
    """``EXCHANGE_KAFKA_BOOTSTRAP`` if set, else the running local broker's address."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    running = LocalBroker(local_broker_home(settings)).running()
    if running is None:
        raise BrokerError(
            "no Kafka to talk to: run `exchange broker start` for a local broker, "
            "or set EXCHANGE_KAFKA_BOOTSTRAP to an existing cluster",
            retriable=False,
        )
    return running.bootstrap


def kafka_options(settings: ExchangeSettings, *, bootstrap: str | None = None) -> dict[str, Any]:
    """Bootstrap and security keyword arguments for any aiokafka client of the bus.

    ``bootstrap`` replaces the settings' address (a tool pointed at another cluster).
    """
    address = bootstrap or resolve_bootstrap(settings)
    return {"bootstrap_servers": address, **client_options(settings)}


def client_options(settings: ExchangeSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol (no bootstrap)."""
    protocol = settings.security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options.update(_sasl_options(settings))
    return options


def _ssl_context(settings: ExchangeSettings) -> Any:
    from aiokafka.helpers import create_ssl_context

    cafile = settings.ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise ConfigError(f"EXCHANGE_SSL_CAFILE {cafile} is not a readable file")
    return create_ssl_context(cafile=str(cafile) if cafile else None)


def _sasl_options(settings: ExchangeSettings) -> dict[str, Any]:
    missing = [
        f"EXCHANGE_{name.upper()}"
        for name in ("sasl_mechanism", "sasl_username", "sasl_password")
        if getattr(settings, name) is None
    ]
    if missing:
        raise ConfigError(
            f"EXCHANGE_SECURITY_PROTOCOL={settings.security_protocol} also needs "
            + ", ".join(missing)
        )
    assert settings.sasl_password is not None  # checked above; narrows the type for mypy
    # aiokafka takes the SCRAM credentials through its sasl_plain_* arguments as well.
    return {
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": settings.sasl_password.get_secret_value(),
    }


#: aiokafka's names for "no ACL allows this" (Kafka error codes 29, 30, 31, 53).
_AUTHORIZATION = {
    "TopicAuthorizationFailedError": "topic",
    "GroupAuthorizationFailedError": "group",
    "ClusterAuthorizationFailedError": "cluster",
    "TransactionalIdAuthorizationFailed": "transactional id",
}
_AUTHENTICATION = {
    "SaslAuthenticationFailed",
    "AuthenticationFailedError",
    "UnsupportedSaslMechanismError",
    "IllegalSaslStateError",
}
#: The one direct connection that names why a client could not bootstrap, s.
_DIAGNOSIS_TIMEOUT = 10.0


def translate_kafka_error(exc: Exception, what: str) -> BrokerError:
    """The bus's error for an aiokafka one: typed for security refusals, else BrokerError.

    Returned, not raised, so the caller writes ``raise translate_kafka_error(e, ...) from e``.
    """
    kind = type(exc).__name__
    detail = str(exc) or kind
    if kind in _AUTHORIZATION:
        # aiokafka puts the refused resource (or the broker's message) in the first argument.
        named = str(exc.args[0]) if exc.args and exc.args[0] else detail
        resource = f"{_AUTHORIZATION[kind]} {named}"
        return AuthorizationError(
            f"{what}: not authorized ({resource}); the principal lacks an ACL, "
            "see `exchange topics acls`",
            resource=resource,
        )
    if kind in _AUTHENTICATION:
        return AuthenticationError(
            f"{what}: authentication failed ({detail}); check "
            "EXCHANGE_SASL_USERNAME, EXCHANGE_SASL_PASSWORD and "
            "EXCHANGE_SASL_MECHANISM"
        )
    if isinstance(exc, ssl.SSLError):
        return TlsError(
            f"{what}: TLS handshake failed ({exc}); check EXCHANGE_SSL_CAFILE "
            "and that the listener speaks TLS"
        )
    return BrokerError(f"{what}: {detail}", retriable=getattr(exc, "retriable", True))


def error_for_code(code: int, message: str | None, what: str) -> BrokerError:
    """The bus's error for a non-zero Kafka error code found in a response."""
    from aiokafka.errors import for_code

    return translate_kafka_error(for_code(code)(message or ""), what)


async def connection_error(
    exc: Exception, what: str, bootstrap: str, options: dict[str, Any]
) -> BrokerError:
    """The bus's error for a failed start of an aiokafka client at ``bootstrap``.

    When the client could not bootstrap and security is on, one direct connection to the
    first address names the real cause (:class:`AuthenticationError`, :class:`TlsError`).
    """
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaConnectionError, KafkaError

    if not isinstance(exc, KafkaConnectionError) or options.get("security_protocol") in (
        None,
        "PLAINTEXT",
    ):
        return translate_kafka_error(exc, what)
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    keys = ("security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
            "sasl_plain_password")  # fmt: skip
    try:
        async with asyncio.timeout(_DIAGNOSIS_TIMEOUT):
            conn = await create_conn(
                host, int(port), **{k: options[k] for k in keys if k in options}
            )
    except (KafkaError, ssl.SSLError) as cause:
        return translate_kafka_error(cause, what)
    except (OSError, TimeoutError):
        return translate_kafka_error(exc, what)
    conn.close()
    return translate_kafka_error(exc, what)
