"""The requester side of the SDK: ask a service, get its one outcome.

How outcomes find their way back to the instance that asked (reply routing, and durable
outcomes for requester connectors) is told in :mod:`exchange._client_replies`; the sending
side is :mod:`exchange._client_sending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import structlog
from prometheus_client import CollectorRegistry

from exchange._catalog import Catalog, load_catalog
from exchange._client_replies import ReplyReader
from exchange._client_sending import Sender
from exchange._codec import Codec, SchemaStore
from exchange._durable import ReplyLedger
from exchange._envelopes import EncodedInquiry, OutcomeDecoder, RequestEncoder
from exchange._errors import BrokerError
from exchange._kafka import connection_error, kafka_options
from exchange._metrics import ClientMetrics
from exchange._outcome import InquirySpec, Outcome
from exchange._replies import InFlight
from exchange._settings import ExchangeSettings
from exchange._signing import Signer
from exchange._signing_keys import signer_for
from exchange._topology import Topics

__all__ = ["ExchangeClient"]

log = structlog.get_logger("exchange.client")


class ExchangeClient:
    """One agency's requester: sends inquiries to ``<prefix>.out.<AGENCY>`` and matches the
    outcomes from ``<prefix>.replies.<AGENCY>`` (see the module docstring for the routing).

    Use it as ``async with ExchangeClient.connect(agency="TAX", settings=s) as client:``, or
    call :meth:`start` and :meth:`close` yourself. One client serves any number of concurrent
    inquiries: one producer (``acks=all``, idempotent, a short linger to batch), one reply
    reader and a table of in-flight futures.
    """

    def __init__(
        self,
        *,
        agency: str,
        settings: ExchangeSettings,
        catalog: Catalog | None = None,
        subsystem: str | None = None,
        registry: CollectorRegistry | None = None,
        linger: float = 0.002,
        durable: str | None = None,
        claim_window: float = 60.0,
        signer: Signer | None = None,
    ) -> None:
        self.agency = agency
        self.subsystem = subsystem
        self.instance_id = uuid.uuid4().hex
        #: The durable reader's name (see the module docstring); None: replies from the end.
        self.durable = durable
        self.reply_to = durable or self.instance_id
        self._settings = settings
        if catalog is None:
            catalog = load_catalog(settings.catalog_path, settings.schemas_path)
        codec = Codec(
            SchemaStore.from_directory(settings.schemas_path),
            max_record_bytes=settings.max_record_bytes,
        )
        #: Signs every request (default: EXCHANGE_SIGNING_KEY[_FILE], if set); None: unsigned.
        self.signer = signer_for(agency, settings, catalog, signer)
        self._encoder = RequestEncoder(
            catalog, codec, agency, subsystem, reply_to=self.reply_to, signer=self.signer
        )
        self._linger = linger
        topics = Topics.for_settings(settings)
        self._ledger = ReplyLedger(claim_window) if durable else None
        self._in_flight = InFlight()
        self._sender = Sender(
            topics.out(agency),
            self._in_flight,
            self._ledger,
            ClientMetrics(registry if registry is not None else CollectorRegistry()),
        )
        self._replies = ReplyReader(
            agency=agency,
            topic=topics.replies(agency),
            reply_to=self.reply_to,
            decoder=OutcomeDecoder(catalog, codec),
            in_flight=self._in_flight,
            ledger=self._ledger,
            group=topics.requester_group(agency, durable) if durable else None,
            durable=durable,
        )
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def connect(
        cls,
        *,
        agency: str,
        settings: ExchangeSettings,
        catalog: Catalog | None = None,
        subsystem: str | None = None,
        registry: CollectorRegistry | None = None,
        durable: str | None = None,
    ) -> ExchangeClient:
        """A client to use with ``async with``: connects on entry, closes on exit."""
        return cls(
            agency=agency,
            settings=settings,
            catalog=catalog,
            subsystem=subsystem,
            registry=registry,
            durable=durable,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect the producer and the reply reader; return once outcomes can be received."""
        from aiokafka.errors import KafkaError

        options = kafka_options(self._settings)
        producer = self._sender.create(options, self._linger)
        self._replies.create(options, self._settings.fetch_max_wait)
        try:
            await producer.start()
            await self._replies.consumer.start()
            await self._replies.assign_at_end(await producer.partitions_for(self._replies.topic))
        except KafkaError as exc:
            await self._stop_kafka()
            what = f"cannot connect the {self.agency} client"
            raise await connection_error(exc, what, options["bootstrap_servers"], options) from exc
        except BaseException:  # a missing topic (BrokerError), a cancelled start: no leak
            await self._stop_kafka()
            raise
        self._reader = asyncio.create_task(self._replies.run(), name="exchange-client-replies")
        log.info("client started", agency=self.agency, instance_id=self.instance_id)

    async def close(self) -> None:
        """Stop reading replies, flush what was sent, and fail every caller still waiting."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._in_flight.fail_all(BrokerError("the client was closed", retriable=False))
        await self._replies.commit()
        await self._stop_kafka()

    async def _stop_kafka(self) -> None:
        await self._sender.stop()
        await self._replies.stop()

    # --- asking -------------------------------------------------------------------------------
    # inquire() and send() keep their keyword signatures spelled out (the public API, as
    # editors and docs show it); both go through _encode() and the one Sender path.

    async def inquire(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        purpose: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a local wait, not the bus deadline
        case_reference: str | None = None,
        end_user_id: str | None = None,
        subject: tuple[str, str] | None = None,
        deadline: datetime | None = None,
    ) -> Outcome:
        """Ask ``service`` and wait for its outcome.

        The payload is validated against the service's newest request schema first; an
        invalid one raises :class:`~exchange.InquiryRejectedError` before anything is sent.
        ``deadline`` (the bus's, default: now + the service's deadline) bounds the inquiry on
        the bus; ``timeout`` bounds how long this call waits (default: until the deadline plus
        a few seconds). When ``timeout`` runs out first this returns a ``TIMED_OUT`` outcome
        with ``local=True`` rather than raising; ``outcome.raise_for_kind()`` turns any
        non-answer into an exception.
        """
        item = self._encode(
            InquirySpec(service, payload, purpose, case_reference, end_user_id, subject, deadline)
        )
        return await (await self._sender.dispatch(item, timeout))

    async def inquire_many(
        self,
        specs: Iterable[InquirySpec],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a local wait, not the bus deadline
    ) -> list[Outcome]:
        """Scatter-gather: send every inquiry at once, return their outcomes in order.

        Whatever has not arrived within ``timeout`` (per call, not per inquiry) is marked
        ``TIMED_OUT`` locally. An invalid spec raises before any inquiry is sent.
        """
        encoded = [self._encoder.encode(spec) for spec in specs]
        futures = []
        for item in encoded:
            self._check_running()
            futures.append(await self._sender.dispatch(item, timeout))
        return list(await asyncio.gather(*futures))  # futures, not coroutines: no tasks

    async def send(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        purpose: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a local wait, not the bus deadline
        case_reference: str | None = None,
        end_user_id: str | None = None,
        subject: tuple[str, str] | None = None,
        deadline: datetime | None = None,
    ) -> uuid.UUID:
        """Fire and forget: send one inquiry and return its id; its outcome comes out of
        :meth:`outcomes` (a local ``TIMED_OUT`` after ``timeout`` when one is given)."""
        item = self._encode(
            InquirySpec(service, payload, purpose, case_reference, end_user_id, subject, deadline)
        )
        await self._sender.stream(item, timeout)
        return item.inquiry_id

    async def outcomes(self) -> AsyncIterator[Outcome]:
        """Outcomes of the inquiries sent with :meth:`send`, as they arrive (runs forever)."""
        while True:
            outcome = await self._in_flight.next_streamed()
            self._sender.settled_streamed(outcome)
            yield outcome

    @property
    def in_flight(self) -> int:
        """Inquiries sent by this client and not settled yet."""
        return len(self._in_flight)

    def acknowledge(self, inquiry_id: uuid.UUID) -> None:
        """Durable mode: the outcome of ``inquiry_id`` is stored; its offset may be committed.

        Until then a restart reads the outcome again. A no-op without ``durable``.
        """
        if self._ledger is not None:
            self._ledger.acknowledge(str(inquiry_id))

    def _encode(self, spec: InquirySpec) -> EncodedInquiry:
        """Validate and encode (an invalid spec raises first), then check the client runs."""
        item = self._encoder.encode(spec)
        self._check_running()
        return item

    def _check_running(self) -> None:
        if self._reader is None or self._reader.done():
            raise BrokerError(
                f"the {self.agency} client is not running (not started, closed, or its reply "
                "reader failed)",
                retriable=False,
            )
