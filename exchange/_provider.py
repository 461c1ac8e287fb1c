"""The provider side of the SDK: answer the inquiries the bus routes to an agency.

Register an async handler per service with :meth:`Provider.handles`, then ``await
provider.run()`` (or ``async with provider:``). The SDK reads ``<prefix>.in.<AGENCY>`` in a
consumer group, decodes each request, calls the handler (at most ``concurrency`` at once),
encodes the :class:`Answer` with the service's newest response schema and writes it to
``<prefix>.out.<AGENCY>``.

Delivery: at least once. Records are handled concurrently and finish out of order; an offset
is committed only when every record before it in its partition has its response acknowledged
by Kafka (``acks=all``), at most every 0.2 s (:mod:`exchange._provider_intake`). A handler's
exception becomes an ``ERROR`` response (``HANDLER_ERROR``, message = the exception's type),
never a crash; a record that cannot be decoded goes to ``<prefix>.dlq`` with its original bytes
and the reason in headers.

Handled once: each process remembers the last ``seen_capacity`` inquiry ids it took (an LRU),
so a redelivered record (a rebalance, a duplicate on ``in``) does not reach the handler again.
That memory does not survive a restart: after a crash between a response and its offset
commit, the handler runs again for those few records and the second response is dropped by
the stream workers as a duplicate, so the requester still gets exactly one outcome.

Pausing: :meth:`Provider.pause` stops fetching from ``in`` (records already buffered are
dropped by the consumer and fetched again later; nothing piles up in memory), handlers in
progress go on; :meth:`Provider.resume` fetches again. A connector pauses while its legacy
system is down. ``dead_letter_errors=True`` also dead-letters the request of a handler that
raised (original bytes, reason ``handler-error``); a :class:`ConnectorError`'s ``code`` becomes
the error code of the answer.

Signatures: with a key (``signer=``, or ``EXCHANGE_SIGNING_KEY[_FILE]``) every response is
signed (:mod:`exchange._signing`). ``verify_requests=True`` also checks each requester's
signature against this process's catalog before the handler runs (the bus does already; this
is defence in depth) and answers ``ERROR``/``BAD_SIGNATURE`` when it fails.

Deferred answers (``Answer.defer()``) go to the manual desk (:mod:`exchange._desk`).
Requests past their deadline are not handled (the bus has settled them as ``TIMED_OUT``), and
a handler still running at the deadline is cancelled without a response.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog
from prometheus_client import CollectorRegistry

from exchange._answer import AnswerStatus, Inquiry
from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._desk import Desk, ensure_desk_topic, manual_answer
from exchange._errors import BrokerError, ConfigError
from exchange._kafka import connection_error, kafka_options
from exchange._provider_answer import Handler, Responder
from exchange._provider_intake import Intake
from exchange._settings import ExchangeSettings
from exchange._signing import Signer
from exchange._signing_keys import signer_for
from exchange._topology import Topics

__all__ = ["Handler", "Provider"]

log = structlog.get_logger("exchange.provider")

H = TypeVar("H", bound=Handler)

#: How long :meth:`Provider.stop` lets handlers in progress finish before cancelling them, s.
DRAIN_TIMEOUT = 10.0


class Provider:
    """One agency's provider: handlers per service, fed from ``<prefix>.in.<AGENCY>``."""

    def __init__(
        self,
        *,
        agency: str,
        settings: ExchangeSettings,
        catalog: Catalog | None = None,
        registry: CollectorRegistry | None = None,
        concurrency: int = 32,
        group_id: str | None = None,
        seen_capacity: int = 100_000,
        dead_letter_errors: bool = False,
        drain_timeout: float = DRAIN_TIMEOUT,
        signer: Signer | None = None,
        verify_requests: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        self.agency = agency
        self._settings = settings
        self._catalog = catalog or load_catalog(settings.catalog_path, settings.schemas_path)
        codec = Codec(
            SchemaStore.from_directory(settings.schemas_path),
            max_record_bytes=settings.max_record_bytes,
        )
        # Responses are signed with this key (default: EXCHANGE_SIGNING_KEY[_FILE], if set).
        signer = signer_for(agency, settings, self._catalog, signer)
        self.desk = Desk(settings, agency, self._catalog, codec, signer)
        topics = Topics.for_settings(settings)
        self._responder = Responder(
            agency=agency,
            topics=topics,
            catalog=self._catalog,
            codec=codec,
            signer=signer,
            desk=self.desk,
            registry=registry if registry is not None else CollectorRegistry(),
            seen_capacity=seen_capacity,
            dead_letter_errors=dead_letter_errors,
            # Defence in depth: check requesters' signatures here too, not only at the bus.
            # Off by default: during a key rotation this process's catalog may lag the bus's.
            verify_requests=verify_requests,
        )
        self._in_topic = topics.in_(agency)
        self._group_id = group_id or topics.provider_group(agency)
        self._drain_timeout = drain_timeout
        self._intake = Intake(agency, self._responder, concurrency)
        self._producer: Any = None
        self._runner: asyncio.Task[None] | None = None

    # --- registration -------------------------------------------------------------------------

    def handles(self, service: str) -> Callable[[H], H]:
        """Decorator: ``@provider.handles("nocr.person.verify.v1")`` registers a handler.

        :class:`ConfigError` if the catalog lacks the service or another agency provides it.
        """
        found = self._catalog.service(service)
        if found is None:
            raise ConfigError(f"service {service} is not in the catalog")
        if found.provider != self.agency:
            raise ConfigError(
                f"service {service} is provided by {found.provider}, not {self.agency}"
            )

        def register(handler: H) -> H:
            self._responder.register(service, handler)
            return handler

        return register

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle inquiries until :meth:`stop` is called or Kafka fails (then raise)."""
        await self.start()
        try:
            await self._intake.run()
        finally:
            await self._shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        self._runner = asyncio.create_task(
            self._intake.run(), name=f"exchange-provider-{self.agency}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect to Kafka and join the agency's provider group."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.errors import KafkaError

        self._intake.reset()
        options = kafka_options(self._settings)
        self._producer = self._responder.producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=2
        )
        consumer = self._intake.consumer = AIOKafkaConsumer(
            **options,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=round(self._settings.fetch_max_wait * 1000),
        )
        try:
            await ensure_desk_topic(self._settings, self.agency)
            await self._producer.start()
            await consumer.start()
            consumer.subscribe([self._in_topic], listener=self._intake.listener())
        except KafkaError as exc:
            await self._close_kafka()
            what = f"cannot start the {self.agency} provider"
            raise await connection_error(exc, what, options["bootstrap_servers"], options) from exc
        except BaseException:  # the desk topic refused (BrokerError), a cancelled start: no leak
            await self._close_kafka()
            raise
        log.info("provider started", agency=self.agency, services=self._responder.services)

    async def stop(self) -> None:
        """Stop taking inquiries, let those in progress finish, commit, disconnect."""
        self._intake.stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                await runner
            finally:
                await self._shutdown()

    async def _shutdown(self) -> None:
        await self._intake.drain(self._drain_timeout)
        await self._close_kafka()

    async def _close_kafka(self) -> None:
        """Stop both clients (the producer even when the consumer's stop failed)."""
        from aiokafka.errors import KafkaError

        clients = [self._intake.consumer, self._producer]
        self._intake.consumer = self._producer = self._responder.producer = None
        failed: list[KafkaError] = []
        for client in clients:
            try:
                if client is not None:
                    await client.stop()
            except KafkaError as exc:
                failed.append(exc)
        if failed:
            first = failed[0]
            raise BrokerError(f"the {self.agency} provider stopped uncleanly: {first}") from first

    # --- pausing ------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._intake.paused

    def pause(self) -> None:
        """Stop fetching from ``in`` (also partitions assigned later); handlers go on."""
        self._intake.pause()

    def resume(self) -> None:
        """Fetch from ``in`` again."""
        self._intake.resume()

    # --- manual desk --------------------------------------------------------------------------

    async def deferred(self) -> list[Inquiry]:
        """Inquiries deferred to a person and not answered yet (from the desk topic)."""
        return await self.desk.pending()

    async def answer_manually(
        self,
        inquiry_id: uuid.UUID | str,
        status: str | AnswerStatus,
        payload: dict[str, Any] | None = None,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Inquiry:
        """Answer a deferred inquiry as a person (``answered_by=MANUAL``); returns it.

        :class:`InquiryError` if it is not waiting on the desk (see :mod:`exchange._desk`).
        """
        if self._producer is None:
            raise BrokerError("the provider is not started", retriable=False)
        answer = manual_answer(status, payload, error_code=error_code, error_message=error_message)
        inquiry = await self.desk.answer(self._producer, inquiry_id, answer)
        self._responder.count(inquiry.service, answer.status, manual=True)
        return inquiry

    # --- intake -------------------------------------------------------------------------------
