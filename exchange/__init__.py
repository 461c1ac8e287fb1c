"""The inter-agency inquiry exchange bus: core library."""

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._client import ExchangeClient
from exchange._desk import answer_manually, list_deferred
from exchange._errors import (
    BenchmarkError,
    BrokerError,
    CatalogError,
    CodecError,
    ConfigError,
    ConnectorConfigError,
    ConnectorError,
    ExchangeError,
    FencedError,
    FramingError,
    InquiryError,
    InquiryFailedError,
    InquiryRejectedError,
    InquiryTimeoutError,
    LocalBrokerError,
    PayloadTooLargeError,
    PermanentError,
    ProcessorError,
    RegistryError,
    RetriableError,
    SchemaError,
    SchemaMismatchError,
    UnknownSchemaError,
)
from exchange._outcome import InquirySpec, Outcome, OutcomeKind
from exchange._provider import Provider
from exchange._settings import ExchangeSettings
from exchange._signing import Signer

__all__ = [
    "Answer",
    "AnswerStatus",
    "BenchmarkError",
    "BrokerError",
    "CatalogError",
    "CodecError",
    "ConfigError",
    "ConnectorConfigError",
    "ConnectorError",
    "ExchangeClient",
    "ExchangeError",
    "ExchangeSettings",
    "FencedError",
    "FramingError",
    "Inquiry",
    "InquiryError",
    "InquiryFailedError",
    "InquiryRejectedError",
    "InquirySpec",
    "InquiryTimeoutError",
    "LocalBrokerError",
    "Outcome",
    "OutcomeKind",
    "PayloadTooLargeError",
    "PermanentError",
    "ProcessorError",
    "Provider",
    "RegistryError",
    "RetriableError",
    "SchemaError",
    "SchemaMismatchError",
    "Signer",
    "UnknownSchemaError",
    "answer_manually",
    "list_deferred",
]
