"""What a connector author writes: a config class and one of two small interfaces.

**Provider connector** (inquiry → legacy call → answer)::

    class AcmeBinding(ServiceBinding):          # one per service the connector answers
        path: str

    class AcmeConfig(ProviderConfig):
        kind: Literal["acme"] = "acme"
        base_url: str
        token: SecretStr
        services: tuple[AcmeBinding, ...]

    class AcmeConnector(ProviderConnector[AcmeConfig, AcmeBinding]):
        config_class = AcmeConfig

        async def check(self) -> None:           # reachable? raise RetriableError if not
            ...

        async def answer(self, inquiry: Inquiry, binding: AcmeBinding) -> Answer:
            ...                                  # call the system, map its result
            return Answer.found({...})

``answer`` raises :class:`~exchange.RetriableError` when the system is down, timed out or
overloaded (the SDK retries with backoff and jitter, and the circuit breaker pauses intake
while it stays down) and :class:`~exchange.PermanentError` when it refused this call (the
requester gets ``FAILED`` with the error's ``code``). Any other exception is unexpected: it
is logged, counted and retried like a ``RetriableError`` (see :mod:`connectors._runtime_errors`;
a ``MappingError`` is not retried); once retries are spent the request is dead-lettered with
its original bytes and the requester gets ``FAILED`` (``LEGACY_UNAVAILABLE`` for an
``OSError``, else ``HANDLER_ERROR``).

**Requester source** (legacy event → inquiry; outcome → back to the legacy system)::

    class OutboxSource(RequesterSource[OutboxConfig]):
        config_class = OutboxConfig

        async def check(self) -> None: ...
        async def poll(self, limit: int) -> Sequence[SourceEvent]: ...
        async def deliver(self, event: SourceEvent, outcome: Outcome) -> None: ...

``poll`` returns up to ``limit`` events whose outcome is not delivered yet, oldest first; it
may return an event again while it is in flight (the runtime skips it by ``inquiry_id``), and
must return it again after a restart if it was never delivered. Each event carries a stable
``inquiry_id`` derived from the legacy event (:func:`stable_inquiry_id`), so sending it twice
is a duplicate the bus recognises. ``deliver`` writes the one outcome back (idempotent by
``inquiry_id``); it may raise :class:`~exchange.RetriableError` like a provider call.

Both kinds may override ``start()`` (open clients; must not fail just because the system is
down — ``check()`` says that) and ``close()``. The SDK owns everything else: see
:mod:`connectors._runtime`.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from connectors._config import ConnectorConfig, ProviderConfig, RequesterConfig, ServiceBinding
from exchange._answer import Answer, Inquiry
from exchange._catalog_model import Catalog
from exchange._outcome import InquirySpec, Outcome

__all__ = [
    "Connector",
    "ProviderConnector",
    "RequesterSource",
    "SourceEvent",
    "stable_inquiry_id",
]

CC = TypeVar("CC", bound=ConnectorConfig)
PC = TypeVar("PC", bound=ProviderConfig)
RC = TypeVar("RC", bound=RequesterConfig)
B = TypeVar("B", bound=ServiceBinding)

#: Namespace of :func:`stable_inquiry_id` (uuid5 of the project's name in the URL namespace).
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "inquiry-exchange/connectors")


def stable_inquiry_id(connector: str, event_key: str) -> uuid.UUID:
    """The same uuid every time for one legacy event of one connector (a uuid5)."""
    return uuid.uuid5(_ID_NAMESPACE, f"{connector}\x00{event_key}")


class Connector(abc.ABC, Generic[CC]):
    """What both kinds share: a typed config, ``start``/``check``/``close``."""

    #: The pydantic class of this connector's config (its ``kind`` is a ``Literal``).
    config_class: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: CC) -> None:
        self.config = config

    def bind(self, catalog: Catalog) -> None:
        """Called by the runtime before :meth:`start` with the bus's catalog (services and
        their schemas), for connectors that map by schema (filedrop reads cells by type)."""

    async def start(self) -> None:
        """Open clients and pools; must not fail because the legacy system is down."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Return if the legacy system can be reached; raise RetriableError if not."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""


class ProviderConnector(Connector[PC], Generic[PC, B]):
    """Answers inquiries to the services its config binds by calling the legacy system."""

    @abc.abstractmethod
    async def answer(self, inquiry: Inquiry, binding: B) -> Answer:
        """The answer to ``inquiry`` (see the module docstring for what to raise)."""


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One legacy event to turn into an inquiry.

    ``inquiry_id`` is stable for the event (the idempotency key, also ``spec.inquiry_id``);
    ``ref`` is whatever the source needs to find the event again in :meth:`deliver`.
    """

    spec: InquirySpec
    ref: Any = None

    @property
    def inquiry_id(self) -> uuid.UUID:
        """The event's inquiry id (``spec.inquiry_id``, which a source must set)."""
        if self.spec.inquiry_id is None:
            raise ValueError("a SourceEvent's spec needs an inquiry_id (stable_inquiry_id)")
        return self.spec.inquiry_id


class RequesterSource(Connector[RC]):
    """Turns legacy events into inquiries and writes their outcomes back."""

    @abc.abstractmethod
    async def poll(self, limit: int) -> Sequence[SourceEvent]:
        """Up to ``limit`` undelivered events, oldest first (see the module docstring)."""

    @abc.abstractmethod
    async def deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        """Write ``event``'s one outcome back to the legacy system (idempotent)."""
