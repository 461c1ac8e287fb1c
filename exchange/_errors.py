"""The one exception tree of the bus.

Every error the bus raises on purpose derives from :class:`ExchangeError`. Subtrees group
errors by what the caller does about them::

    ExchangeError                      root; ``retriable`` says whether trying again can help
    ├── ConfigError                    settings or files are wrong: fix them, then restart
    │   ├── CatalogError               the catalog failed validation (``problems`` lists each)
    │   ├── ConnectorConfigError       a connector's config failed validation
    │   └── SchemaError                an .avsc file is invalid or unsafe to decode with
    ├── BrokerError                    Kafka cannot be reached or started (often retriable)
    │   ├── LocalBrokerError           the project's own local broker cannot start or stop
    │   ├── FencedError                another worker took over this worker's partitions
    │   └── KafkaSecurityError         Kafka refused who we are or what we asked: not retriable
    │       ├── AuthenticationError    wrong SASL credentials or mechanism
    │       ├── TlsError               the TLS handshake failed (an untrusted certificate …)
    │       └── AuthorizationError     the principal lacks an ACL for the operation
    ├── CodecError                     bytes that are not a valid record: dead-letter them
    │   ├── FramingError               wrong magic, truncated header
    │   ├── UnknownSchemaError         fingerprint or schema id not known
    │   ├── SchemaMismatchError        the body does not match its schema
    │   └── PayloadTooLargeError       over the configured size limit
    ├── RegistryError                  the schema registry cannot be reached or refused a call
    ├── ConnectorError                 a connector's call to its legacy system failed
    │   ├── RetriableError             down, timed out, overloaded: retried with backoff; trips
    │   │                              the circuit breaker
    │   └── PermanentError             refused the call (a 4xx, a SOAP fault): answered as ERROR
    ├── InquiryError                   an inquiry cannot be made or answered as asked
    │   ├── InquiryTimeoutError        no outcome arrived in the time the caller allowed
    │   ├── InquiryRejectedError       refused, by the client before sending or by the bus
    │   └── InquiryFailedError         the provider answered with an error
    ├── BenchmarkError                 a benchmark's process failed or its system never answered
    └── ProcessorError                 a stream processor raised: its batch was rolled back, exit
        └── ProcessorStalledError      it had work and made no progress for too long: exit

Foreign exceptions (aiokafka, fastavro, httpx …) are translated at the boundary with
``raise … from exc`` so callers need to catch only this tree.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Root of every error the bus raises on purpose."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retriable is not None:
            self.retriable = retriable


class ConfigError(ExchangeError):
    """Settings, catalog or config files are wrong; fix them and restart."""


class CatalogError(ConfigError):
    """The catalog failed validation; ``problems`` holds one line per problem."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ConnectorConfigError(ConfigError):
    """A connector's configuration failed validation; ``problems`` holds one line each."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class SchemaError(ConfigError):
    """An Avro schema file is invalid, or unsafe to decode untrusted bytes with."""


class BrokerError(ExchangeError):
    """Kafka cannot be reached, or refused an operation."""

    retriable = True


class LocalBrokerError(BrokerError):
    """The project's own local broker cannot be set up, started or stopped."""

    retriable = False


class FencedError(BrokerError):
    """A newer owner of the same transactional id fenced this producer; this worker is a zombie.

    The worker must exit: its partitions already belong to someone else.
    """

    retriable = False


class KafkaSecurityError(BrokerError):
    """Kafka refused the connection or the operation for a security reason.

    Retrying as is cannot help: fix the credentials, the CA file or the ACLs
    (``exchange topics acls``), then restart.
    """

    retriable = False


class AuthenticationError(KafkaSecurityError):
    """The broker refused the SASL credentials (wrong user or password, mechanism off)."""


class TlsError(KafkaSecurityError):
    """The TLS handshake failed: the broker's certificate is not trusted (wrong
    ``EXCHANGE_SSL_CAFILE``), does not name the host, or the listener does not speak TLS."""


class AuthorizationError(KafkaSecurityError):
    """The principal is authenticated but no ACL allows the operation; ``resource`` names
    what was refused when Kafka said (a topic, a group, a transactional id, the cluster)."""

    def __init__(self, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource


class CodecError(ExchangeError):
    """Bytes that are not a valid record of the bus; the record belongs in the DLQ."""

    #: A short machine-readable reason, also used as the DLQ reason header.
    reason: str = "codec-error"


class FramingError(CodecError):
    """The framing is wrong: bad magic bytes or a truncated header."""

    reason = "bad-framing"


class UnknownSchemaError(CodecError):
    """The record names a schema (fingerprint or registry id) that is not known."""

    reason = "unknown-schema"


class SchemaMismatchError(CodecError):
    """The body does not decode with, or the value does not fit, its schema."""

    reason = "schema-mismatch"


class PayloadTooLargeError(CodecError):
    """The record is larger than the configured limit."""

    reason = "payload-too-large"


class RegistryError(ExchangeError):
    """The schema registry (Confluent framing only) cannot be reached or refused a request.

    ``retriable`` is true for transport failures and server errors, false for refusals.
    """

    retriable = True

    def __init__(
        self, message: str, *, status: int | None = None, retriable: bool | None = None
    ) -> None:
        super().__init__(message, retriable=retriable)
        self.status = status


class ConnectorError(ExchangeError):
    """A connector's call to its legacy system failed; ``code`` is the machine-readable why.

    The connector SDK turns it into the inquiry's ``ERROR`` answer (``code`` becomes the
    error code the requester sees) once retries, if any, are spent.
    """

    def __init__(self, message: str, *, code: str, retriable: bool | None = None) -> None:
        super().__init__(message, retriable=retriable)
        self.code = code


class RetriableError(ConnectorError):
    """The legacy system is down, timed out or overloaded: trying again later can help.

    The SDK retries with exponential backoff and jitter, and enough of them in a row open
    the circuit breaker (intake pauses until the system answers again).
    """

    retriable = True

    def __init__(self, message: str, *, code: str = "LEGACY_UNAVAILABLE") -> None:
        super().__init__(message, code=code)


class PermanentError(ConnectorError):
    """The legacy system refused this call (a 4xx, a SOAP fault): retrying cannot help.

    Answered at once as ``ERROR`` with ``code``; the circuit stays closed (the system is up).
    """

    retriable = False


class InquiryError(ExchangeError):
    """An inquiry cannot be made or answered as asked."""


class InquiryTimeoutError(InquiryError):
    """No outcome reached the caller within the time it allowed."""


class InquiryRejectedError(InquiryError):
    """The inquiry was refused: ``reason`` is the bus's machine-readable reject reason.

    Raised by the client before anything is sent (unknown service, invalid payload) and by
    ``Outcome.raise_for_kind()`` for a ``REJECTED`` outcome; fix the inquiry, do not retry as is.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InquiryFailedError(InquiryError):
    """The provider answered with an error; ``code`` is its error code (``HANDLER_ERROR`` …)."""

    def __init__(self, message: str, *, code: str, retriable: bool = False) -> None:
        super().__init__(message, retriable=retriable)
        self.code = code


class BenchmarkError(ExchangeError):
    """A benchmark run cannot go on: a scenario process died or the system never answered."""


class ProcessorError(ExchangeError):
    """A stream processor raised; the engine rolled back its batch and stops, loudly.

    ``partition`` is the partition number whose batch (or timer tick) was being processed.
    """

    def __init__(self, message: str, *, partition: int) -> None:
        super().__init__(message)
        self.partition = partition


class ProcessorStalledError(ProcessorError):
    """A stream processor had records to process and made no progress for too long; it exits
    so that its supervisor restarts it.

    ``lags`` maps each partition it held with records left to the number of them (empty when
    a rebalance or table recovery never finished).
    """

    retriable = True

    def __init__(self, message: str, *, lags: dict[int, int]) -> None:
        super().__init__(message, partition=min(lags, default=-1))
        self.lags = dict(lags)
