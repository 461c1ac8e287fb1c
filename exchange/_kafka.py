"""Where Kafka is and how to talk to it, for every component of the bus.

Every producer, consumer and admin client of the bus is built the same way::

    AIOKafkaProducer(bootstrap_servers=resolve_bootstrap(settings), **client_options(settings))

``resolve_bootstrap`` prefers ``EXCHANGE_KAFKA_BOOTSTRAP`` (an existing cluster) and otherwise
finds the local broker that ``exchange broker start`` recorded in the state dir.
``client_options`` turns the security settings into aiokafka keyword arguments.
"""

from __future__ import annotations

from typing import Any

from exchange._errors import BrokerError, ConfigError
from exchange._kafka_probe import ClusterInfo, check_reachable
from exchange._local_broker import LocalBroker, local_broker_home
from exchange._settings import ExchangeSettings

__all__ = [
    "ClusterInfo",
    "check_reachable",
    "client_options",
    "kafka_options",
    "resolve_bootstrap",
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
