"""Which connector class a config's ``kind`` names.

Three ways, tried in order:

1. a built-in (``BUILTINS``: ``soap``, ``rest``, ``sql``, ``outbox``, ``filedrop``);
2. an installed package's entry point in the group ``exchange.connectors``
   (``acme = "acme_connector.connector:AcmeConnector"`` in its ``pyproject.toml``);
3. an import path ``package.module:Class`` written as the kind itself (handy while
   developing a connector that is not installed yet).

Classes are imported only when asked for: ``exchange connector list`` imports nothing heavy.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from connectors._config import ConnectorConfig
from connectors._sdk import Connector, ProviderConnector, RequesterSource
from exchange._errors import ConnectorConfigError

__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "BuiltIn", "config_class", "connector_class"]

ENTRY_POINT_GROUP = "exchange.connectors"


class BuiltIn(NamedTuple):
    """A connector shipped with the bus."""

    target: str
    role: str
    summary: str


BUILTINS: dict[str, BuiltIn] = {
    "soap": BuiltIn(
        "connectors.soap:SoapConnector", "provider", "answers by calling a WSDL operation (zeep)"
    ),
    "rest": BuiltIn(
        "connectors.rest:RestConnector", "provider", "answers by calling an HTTP JSON API (httpx)"
    ),
    "sql": BuiltIn(
        "connectors.sql:SqlConnector", "provider", "answers with a parameterised SQL query"
    ),
    "outbox": BuiltIn(
        "connectors.outbox:OutboxSource",
        "requester",
        "asks for each row of an outbox table; outcomes to a result table",
    ),
    "filedrop": BuiltIn(
        "connectors.filedrop:FiledropSource",
        "requester",
        "asks for each row of CSV/XML files dropped in a folder; result files beside them",
    ),
}


def connector_class(kind: str) -> type[Connector[Any]]:
    """The connector class for ``kind``; :class:`ConnectorConfigError` if none is known."""
    if kind in BUILTINS:
        return _load(BUILTINS[kind].target, kind)
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=kind):
        return _load(entry.value, kind)
    if ":" in kind:
        return _load(kind, kind)
    known = ", ".join(sorted(BUILTINS))
    raise ConnectorConfigError(
        f"kind: unknown connector {kind!r} (built in: {known}; or an installed "
        f"'{ENTRY_POINT_GROUP}' entry point, or module:Class)",
        problems=[f"kind: unknown connector {kind!r}"],
    )


def config_class(kind: str) -> type[ConnectorConfig]:
    """The config class of the connector for ``kind``."""
    return connector_class(kind).config_class


def _load(target: str, kind: str) -> type[Connector[Any]]:
    module_name, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConnectorConfigError(
            f"kind: connector {kind!r} cannot be loaded from {target}: {exc}",
            problems=[f"kind: cannot load {target}"],
        ) from exc
    if not (isinstance(found, type) and issubclass(found, ProviderConnector | RequesterSource)):
        raise ConnectorConfigError(
            f"kind: {target} is not a ProviderConnector or RequesterSource",
            problems=[f"kind: {target} is not a connector class"],
        )
    return found
