"""The requester side of the SDK: ask a service, get its one outcome.

Reply routing. Every :class:`ExchangeClient` instance has its own ``instance_id`` (a uuid),
sent as the ``exchange-reply-to`` header of each request; the stream workers copy it onto the
outcome they write to ``<prefix>.replies.<AGENCY>``. Each instance reads **every** partition of
that topic by manual assignment (no consumer group, so instances never steal partitions from
one another and a new instance needs no rebalance), starting from the end at start-up, with
``isolation_level="read_committed"`` (outcomes are written in the workers' transactions). It
compares the header and decodes only its own outcomes; the others are skipped unread.

Cost of that choice: with *N* instances of one agency, each reply is fetched *N* times, so
broker egress on the replies topic grows with *N* (cheap for the few to few dozen instances an
agency runs; a deployment with hundreds would give each instance its own replies partition
instead). Nothing is committed, so an outcome that arrives while no instance of its sender
runs is not delivered to anyone (it stays in ``replies`` and in the audit trail); an inquiry
whose caller stopped waiting ends locally as ``TIMED_OUT`` with ``Outcome.local`` set.

Durable outcomes (``durable="NAME"``, what requester connectors use). The reply-to is the
stable ``NAME`` instead of the random instance id, and the reader keeps its offsets in the
consumer group ``<prefix>.requester.<AGENCY>.<NAME>`` (still assigning every partition
itself: no rebalance), starting where it committed. An outcome's offset is committed only
after the caller called :meth:`ExchangeClient.acknowledge` for it (it stored the outcome), so
outcomes that arrive while the process is down are read after the restart. One outcome that
nobody waits for (sent by the previous run) is parked until the same inquiry id is sent
again, which then takes it at once instead of sending: see :mod:`exchange._durable`. Run one
process per ``NAME``: two would read each other's outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import structlog
from prometheus_client import CollectorRegistry

from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._durable import ReplyLedger
from exchange._envelopes import EncodedInquiry, OutcomeDecoder, RequestEncoder, header_is
from exchange._errors import BrokerError, CodecError
from exchange._kafka import connection_error, kafka_options
from exchange._metrics import ClientMetrics
from exchange._outcome import InquirySpec, Outcome, OutcomeKind
from exchange._replies import InFlight
from exchange._settings import ExchangeSettings
from exchange._signing import Signer
from exchange._signing_keys import signer_for
from exchange._topology import Topics
from exchange._wire import HEADER_REPLY_TO

__all__ = ["ExchangeClient"]

log = structlog.get_logger("exchange.client")

#: How long past the bus deadline a caller without a timeout keeps waiting: the workers'
#: timer settles the inquiry at the deadline, and its outcome still has to travel.
SETTLE_GRACE = 5.0


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
        self._decoder = OutcomeDecoder(catalog, codec)
        self._metrics = ClientMetrics(registry if registry is not None else CollectorRegistry())
        self._children: dict[tuple[str, str, OutcomeKind], tuple[Any, Any]] = {}
        self._linger = linger
        topics = Topics.for_settings(settings)
        self._out_topic = topics.out(agency)
        self._replies_topic = topics.replies(agency)
        self._group = topics.requester_group(agency, durable) if durable else None
        self._ledger = ReplyLedger(claim_window) if durable else None
        self._reply_to = self.reply_to.encode("ascii")
        self._in_flight = InFlight()
        self._producer: Any = None
        self._consumer: Any = None
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
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.errors import KafkaError

        options = kafka_options(self._settings)
        self._producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=True,
            linger_ms=int(self._linger * 1000),
        )
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=self._group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=round(self._settings.fetch_max_wait * 1000),
        )
        try:
            await self._producer.start()
            await self._consumer.start()
            await self._assign_replies_at_end()
        except KafkaError as exc:
            await self._stop_kafka()
            what = f"cannot connect the {self.agency} client"
            raise await connection_error(exc, what, options["bootstrap_servers"], options) from exc
        except BaseException:  # a missing topic (BrokerError), a cancelled start: no leak
            await self._stop_kafka()
            raise
        self._reader = asyncio.create_task(self._read_replies(), name="exchange-client-replies")
        log.info("client started", agency=self.agency, instance_id=self.instance_id)

    async def _assign_replies_at_end(self) -> None:
        """Assign every replies partition and resolve its end offset *before* any send, so no
        outcome of this instance can be written before the position the reader starts at."""
        from aiokafka import TopicPartition

        partitions = await self._producer.partitions_for(self._replies_topic)
        if not partitions:
            raise BrokerError(
                f"topic {self._replies_topic} does not exist; run `exchange topics apply`"
            )
        assigned = [TopicPartition(self._replies_topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        for tp in assigned:
            committed = await self._consumer.committed(tp) if self._group else None
            if committed is None:
                await self._consumer.seek_to_end(tp)
            else:  # durable: from the first outcome not acknowledged by the previous run
                self._consumer.seek(tp, committed)
            position = await self._consumer.position(tp)
            if self._ledger is not None:
                self._ledger.start(tp.partition, position)
        await self._commit()

    async def close(self) -> None:
        """Stop reading replies, flush what was sent, and fail every caller still waiting."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._in_flight.fail_all(BrokerError("the client was closed", retriable=False))
        await self._commit()
        await self._stop_kafka()

    async def _stop_kafka(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    # --- asking -------------------------------------------------------------------------------

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
        spec = InquirySpec(
            service, payload, purpose, case_reference, end_user_id, subject, deadline
        )
        return await self._ask(spec, timeout)

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
        futures = [await self._dispatch(item, timeout) for item in encoded]
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
        spec = InquirySpec(
            service, payload, purpose, case_reference, end_user_id, subject, deadline
        )
        item = self._encoder.encode(spec)
        self._check_running()
        self._in_flight.expect_streamed(item.inquiry_id, item.service, item.provider, timeout)
        self._metrics.in_flight.inc()
        if not self._claim(item):
            await self._produce(item)
        return item.inquiry_id

    async def outcomes(self) -> AsyncIterator[Outcome]:
        """Outcomes of the inquiries sent with :meth:`send`, as they arrive (runs forever)."""
        while True:
            outcome = await self._in_flight.next_streamed()
            self._metrics.in_flight.dec()
            self._count(outcome)
            yield outcome

    @property
    def in_flight(self) -> int:
        """Inquiries sent by this client and not settled yet."""
        return len(self._in_flight)

    async def _ask(self, spec: InquirySpec, wait: float | None) -> Outcome:
        future = await self._dispatch(self._encoder.encode(spec), wait)
        return await future

    def _check_running(self) -> None:
        if self._reader is None or self._reader.done():
            raise BrokerError(
                f"the {self.agency} client is not running (not started, closed, or its reply "
                "reader failed)",
                retriable=False,
            )

    async def _dispatch(self, item: EncodedInquiry, wait: float | None) -> asyncio.Future[Outcome]:
        """Register and send one inquiry; the returned future resolves to its outcome."""
        self._check_running()
        if wait is None:
            wait = item.seconds_to_deadline() + SETTLE_GRACE
        future = self._in_flight.expect(item.inquiry_id, item.service, item.provider, wait)
        self._metrics.in_flight.inc()
        future.add_done_callback(functools.partial(self._settled, item.key_text))
        if not self._claim(item):
            await self._produce(item)
        return future

    def _claim(self, item: EncodedInquiry) -> bool:
        """Durable: settle from an outcome read before this send (the previous run's); True
        when there was one, so the inquiry need not go out again."""
        parked = self._ledger.claim(item.key_text) if self._ledger is not None else None
        if parked is None:
            return False
        self._in_flight.settle(item.key_text, parked)
        return True

    def acknowledge(self, inquiry_id: uuid.UUID) -> None:
        """Durable mode: the outcome of ``inquiry_id`` is stored; its offset may be committed.

        Until then a restart reads the outcome again. A no-op without ``durable``.
        """
        if self._ledger is not None:
            self._ledger.acknowledge(str(inquiry_id))

    def _settled(self, inquiry_id: str, future: asyncio.Future[Outcome]) -> None:
        self._metrics.in_flight.dec()
        if future.cancelled():  # the caller gave up: drop the inquiry, its outcome is late
            self._in_flight.forget(inquiry_id)
        elif future.exception() is None:
            self._count(future.result())

    def _count(self, outcome: Outcome) -> None:
        key = (outcome.provider, outcome.service, outcome.kind)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per label set
            kind = outcome.kind.value
            children = self._children[key] = (
                self._metrics.inquiries.labels(outcome.provider, outcome.service, kind),
                self._metrics.latency.labels(outcome.service, kind),
            )
        children[0].inc()
        if outcome.elapsed is not None:
            children[1].observe(outcome.elapsed)

    async def _produce(self, item: EncodedInquiry) -> None:
        from aiokafka.errors import KafkaError

        try:
            delivery = await self._producer.send(
                self._out_topic, item.value, key=item.key, headers=item.headers
            )
        except KafkaError as exc:
            self._in_flight.forget(item.key_text)  # the caller gets the exception instead
            raise BrokerError(f"cannot send inquiry {item.key_text}: {exc}") from exc
        delivery.add_done_callback(lambda done: self._delivered(item.key_text, done))

    def _delivered(self, inquiry_id: str, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            exc: BaseException | None = BrokerError(f"sending inquiry {inquiry_id} cancelled")
        else:
            exc = delivery.exception()
        if exc is not None:
            error = BrokerError(f"inquiry {inquiry_id} not acknowledged by Kafka: {exc}")
            error.__cause__ = exc
            log.error("inquiry not sent", inquiry_id=inquiry_id, error=str(exc))
            self._in_flight.fail(inquiry_id, error)

    # --- receiving ----------------------------------------------------------------------------

    async def _read_replies(self) -> None:
        reply_to = self._reply_to
        in_flight = self._in_flight
        ledger = self._ledger
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=2000)
                if ledger is not None:
                    self._read_durably(batches, ledger)
                    await self._commit()
                    continue
                for records in batches.values():
                    for record in records:
                        if header_is(record.headers, HEADER_REPLY_TO, reply_to):
                            self._deliver(record, in_flight)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("reply reader stopped", agency=self.agency)
            in_flight.fail_all(BrokerError(f"the reply reader stopped: {exc}"))
            raise

    def _deliver(self, record: Any, in_flight: InFlight) -> None:
        outcome = self._decode(record, in_flight)
        if outcome is not None:
            in_flight.settle(str(outcome.inquiry_id), outcome)

    def _decode(self, record: Any, in_flight: InFlight) -> Outcome | None:
        """The outcome in a replies ``record`` (aiokafka's), or None if it does not decode."""
        key = record.key
        inquiry_id = key.decode("ascii", "replace") if key else None
        elapsed = in_flight.elapsed(inquiry_id) if inquiry_id else None
        try:
            return self._decoder.decode(record.value, elapsed=elapsed, headers=record.headers)
        except CodecError as exc:
            # An outcome addressed to us that we cannot read (a bug in its writer, or a schema
            # newer than this SDK): its caller gets the error now rather than a local timeout.
            log.error(  # noqa: TRY400 - no traceback: its text could quote payload values
                "undecodable outcome",
                agency=self.agency,
                inquiry_id=inquiry_id,
                error_type=type(exc).__name__,
            )
            if inquiry_id is not None:
                in_flight.fail(inquiry_id, exc)
            return None

    def _read_durably(self, batches: dict[Any, list[Any]], ledger: ReplyLedger) -> None:
        """Hold our outcomes until acknowledged; park those nobody waits for yet."""
        now = time.monotonic()
        for tp, records in batches.items():
            for record in records:
                if not header_is(record.headers, HEADER_REPLY_TO, self._reply_to):
                    ledger.seen(tp.partition, record.offset)
                    continue
                key = record.key.decode("ascii") if record.key else ""
                ledger.hold(tp.partition, record.offset, key)
                outcome = self._decode(record, self._in_flight)
                if outcome is None:
                    ledger.acknowledge(key)  # nothing to store: do not stall the commits
                elif not self._in_flight.settle(key, outcome):
                    ledger.park(key, outcome, now)  # its caller acknowledges it once stored
        for key in ledger.expire(now):
            log.info("unclaimed outcome released", agency=self.agency, inquiry_id=key)

    async def _commit(self) -> None:
        """Commit what the ledger allows (durable mode only)."""
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        if self._ledger is None or self._consumer is None:
            return
        offsets = self._ledger.to_commit()
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(self._replies_topic, p): o for p, o in offsets.items()}
            )
        except KafkaError as exc:  # the next round tries again; a restart re-reads, no loss
            self._ledger.commit_failed(offsets)
            log.warning("reply offsets not committed", durable=self.durable, error=str(exc))
