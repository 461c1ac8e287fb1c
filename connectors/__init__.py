"""The connector SDK: bridge a legacy system to the bus by writing only the mapping.

A connector is a typed config (:class:`ConnectorConfig` and its provider/requester bases) and
one small interface, :class:`ProviderConnector` (inquiry → legacy call → :class:`~exchange.Answer`)
or :class:`RequesterSource` (legacy event → inquiry; outcome → back). The SDK runs it
(:func:`run_connector`, ``exchange connector run CONFIG.yaml``) with retries, a circuit breaker
that pauses intake while the legacy system is down, idempotency by inquiry id, dead letters,
metrics, logs with connector context and a health endpoint. See ``docs/connectors.md``.
"""

from connectors._config import (
    ConnectorConfig,
    ProviderConfig,
    RequesterConfig,
    ServiceBinding,
    load_config,
)
from connectors._registry import connector_class
from connectors._runtime import run_connector
from connectors._sdk import ProviderConnector, RequesterSource, SourceEvent, stable_inquiry_id
from exchange._errors import PermanentError, RetriableError

__all__ = [
    "ConnectorConfig",
    "PermanentError",
    "ProviderConfig",
    "ProviderConnector",
    "RequesterConfig",
    "RequesterSource",
    "RetriableError",
    "ServiceBinding",
    "SourceEvent",
    "connector_class",
    "load_config",
    "run_connector",
    "stable_inquiry_id",
]
