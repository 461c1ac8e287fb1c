"""A second real broker for security tests: SASL/SCRAM over TLS with Kafka's authorizer.

::

    broker = SecuredBroker.start(tmp_folder, users=["TAX", "NOCR", "exchange-worker"])
    tax = broker.settings(base, "TAX")          # SASL_SSL, SCRAM-SHA-512, the test CA
    ...
    broker.stop()

Every SCRAM user's password is random; ``admin`` is the super user that creates topics and
applies ACLs. The TLS files (a throw-away CA and the broker's certificate) are made at start,
so nothing secret is kept in the repository and nothing needs the network.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from exchange import ExchangeSettings, LocalBrokerError
from exchange._local_broker import LocalBroker
from exchange._local_broker_security import BrokerSecurity, ScramUser, write_tls_files

#: Format, JVM start and the authorizer's first metadata load, on two busy cores.
START_TIMEOUT = 180.0
ADMIN = "admin"


@dataclass
class SecuredBroker:
    """A started secured local broker and the credentials it knows."""

    broker: LocalBroker
    security: BrokerSecurity
    bootstrap: str
    start_seconds: float

    @classmethod
    def start(cls, home: Path, *, users: Sequence[str]) -> SecuredBroker:
        """Make the TLS files, format with a SCRAM user per name (and ``admin``), start."""
        tls = write_tls_files(home / "tls")
        known = tuple(ScramUser(name, secrets.token_hex(12)) for name in users)
        security = BrokerSecurity(tls, ScramUser(ADMIN, secrets.token_hex(12)), known)
        broker = LocalBroker(home / "broker", tied_to_parent=True, security=security)
        started = time.monotonic()
        try:
            running = broker.start(timeout=START_TIMEOUT)
        except LocalBrokerError as exc:  # the broker's log says why; a test run shows it
            raise LocalBrokerError(f"{exc.message}\n{broker.log_tail(80)}") from exc
        return cls(broker, security, running.bootstrap, time.monotonic() - started)

    def stop(self) -> None:
        """SIGTERM the broker and wait for it."""
        self.broker.stop()

    def password(self, user: str) -> str:
        """The SCRAM password of ``user``."""
        for known in (self.security.admin, *self.security.users):
            if known.name == user:
                return known.password
        raise KeyError(user)

    def settings(
        self,
        base: ExchangeSettings,
        user: str,
        *,
        password: str | None = None,
        cafile: Path | None = None,
    ) -> ExchangeSettings:
        """``base`` pointed at this broker as ``user`` (``password``/``cafile`` override)."""
        return base.model_copy(
            update={
                "kafka_bootstrap": self.bootstrap,
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": user,
                "sasl_password": SecretStr(password or self.password(user)),
                "ssl_cafile": cafile or self.security.tls.ca_cert,
            }
        )

    def env(self, user: str) -> dict[str, str]:
        """The ``EXCHANGE_*`` variables that make a child ``exchange`` process ``user``."""
        return {
            "EXCHANGE_KAFKA_BOOTSTRAP": self.bootstrap,
            "EXCHANGE_SECURITY_PROTOCOL": "SASL_SSL",
            "EXCHANGE_SASL_MECHANISM": "SCRAM-SHA-512",
            "EXCHANGE_SASL_USERNAME": user,
            "EXCHANGE_SASL_PASSWORD": self.password(user),
            "EXCHANGE_SSL_CAFILE": str(self.security.tls.ca_cert),
        }
