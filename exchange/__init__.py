"""The inter-agency inquiry exchange bus: core library."""

from exchange._errors import (
    BrokerError,
    CatalogError,
    CodecError,
    ConfigError,
    ExchangeError,
    InquiryError,
    InquiryTimeoutError,
)
from exchange._settings import ExchangeSettings

__all__ = [
    "BrokerError",
    "CatalogError",
    "CodecError",
    "ConfigError",
    "ExchangeError",
    "ExchangeSettings",
    "InquiryError",
    "InquiryTimeoutError",
]
