"""The inter-agency inquiry exchange bus: core library."""

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._client import ExchangeClient
from exchange._desk import answer_manually, list_deferred
from exchange._errors import (
    BrokerError,
    CatalogError,
    CodecError,
    ConfigError,
    ExchangeError,
    InquiryError,
    InquiryFailedError,
    InquiryRejectedError,
    InquiryTimeoutError,
)
from exchange._outcome import InquirySpec, Outcome, OutcomeKind
from exchange._provider import Provider
from exchange._settings import ExchangeSettings

__all__ = [
    "Answer",
    "AnswerStatus",
    "BrokerError",
    "CatalogError",
    "CodecError",
    "ConfigError",
    "ExchangeClient",
    "ExchangeError",
    "ExchangeSettings",
    "Inquiry",
    "InquiryError",
    "InquiryFailedError",
    "InquiryRejectedError",
    "InquirySpec",
    "InquiryTimeoutError",
    "Outcome",
    "OutcomeKind",
    "Provider",
    "answer_manually",
    "list_deferred",
]
