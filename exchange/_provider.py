"""The provider side of the SDK: answer the inquiries the bus routes to an agency.

Register an async handler per service with :meth:`Provider.handles`, then ``await
provider.run()`` (or ``async with provider:``). The SDK reads ``<prefix>.in.<AGENCY>`` in a
consumer group, decodes each request, calls the handler (at most ``concurrency`` at once),
encodes the :class:`Answer` with the service's newest response schema and writes it to
``<prefix>.out.<AGENCY>``.

Delivery: at least once. Records are handled concurrently and finish out of order; an offset
is committed only when every record before it in its partition has its response acknowledged
by Kafka (``acks=all``), at most every :data:`COMMIT_INTERVAL`. A handler's exception becomes
an ``ERROR`` response (``HANDLER_ERROR``, message = the exception's type), never a crash; a
record that cannot be decoded goes to ``<prefix>.dlq`` with its original bytes and the reason
in headers.

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
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog
from prometheus_client import CollectorRegistry

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._desk import Desk, ensure_desk_topic, manual_answer
from exchange._dlq import dead_letter_record
from exchange._envelopes import ReceivedRequest, ServiceCache, decode_request, encode_answer
from exchange._errors import BrokerError, CodecError, ConfigError, ConnectorError
from exchange._intake import OffsetTracker, SeenInquiries
from exchange._kafka import connection_error, kafka_options, translate_kafka_error
from exchange._metrics import UNKNOWN_LABEL, DlqMetrics, ProviderMetrics
from exchange._settings import ExchangeSettings
from exchange._signing import Signer
from exchange._signing_keys import signer_for
from exchange._signing_policy import verify_record
from exchange._topology import Topics
from exchange._wire import HEADER_DLQ_REASON, RecordType, header_value

__all__ = ["Handler", "Provider"]

log = structlog.get_logger("exchange.provider")

#: A service handler: takes the inquiry, returns the answer.
Handler = Callable[[Inquiry], Awaitable[Answer]]
H = TypeVar("H", bound=Handler)

#: How long :meth:`Provider.stop` lets handlers in progress finish before cancelling them, s.
DRAIN_TIMEOUT = 10.0
#: How often intake commits the offsets of answered records, s.
COMMIT_INTERVAL = 0.2


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
        # Responses are signed with this key (default: EXCHANGE_SIGNING_KEY[_FILE], if set).
        self._signer = signer_for(agency, settings, self._catalog, signer)
        # Defence in depth: check requesters' signatures here too, not only at the bus. Off
        # by default: during a key rotation this process's catalog may lag the bus's.
        self._verify_requests = verify_requests
        self._codec = Codec(
            SchemaStore.from_directory(settings.schemas_path),
            max_record_bytes=settings.max_record_bytes,
        )
        self._services = ServiceCache(self._catalog, self._codec)
        self.desk = Desk(settings, agency, self._catalog, self._codec, self._signer)
        topics = Topics.for_settings(settings)
        self._in_topic = topics.in_(agency)
        self._out_topic = topics.out(agency)
        self._dlq_topic = topics.dlq
        self._group_id = group_id or topics.provider_group(agency)
        self._handlers: dict[str, Handler] = {}
        self._concurrency = concurrency
        self._dead_letter_errors = dead_letter_errors
        self._paused = False
        self._drain_timeout = drain_timeout
        registry = registry if registry is not None else CollectorRegistry()
        self._metrics = ProviderMetrics(registry)
        self._dlq_metrics = DlqMetrics(registry)
        self._handled: dict[tuple[str, AnswerStatus, bool], Any] = {}
        self._timers: dict[str, Any] = {}
        self._seen = SeenInquiries(seen_capacity)
        self._tracker: OffsetTracker[Any] = OffsetTracker()
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._producer: Any = None
        self._consumer: Any = None
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
            self._handlers[service] = handler
            self._handled.clear()  # a service counted as unknown so far now has its label
            return handler

        return register

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle inquiries until :meth:`stop` is called or Kafka fails (then raise)."""
        await self.start()
        try:
            await self._intake()
        finally:
            await self._shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        self._runner = asyncio.create_task(self._intake(), name=f"exchange-provider-{self.agency}")
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

        self._stopping.clear()
        self._failure = None
        options = kafka_options(self._settings)
        self._producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=2
        )
        self._consumer = AIOKafkaConsumer(
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
            await self._consumer.start()
            self._consumer.subscribe([self._in_topic], listener=_revocation_listener(self))
        except KafkaError as exc:
            await self._close_kafka()
            what = f"cannot start the {self.agency} provider"
            raise await connection_error(exc, what, options["bootstrap_servers"], options) from exc
        except BaseException:  # the desk topic refused (BrokerError), a cancelled start: no leak
            await self._close_kafka()
            raise
        log.info("provider started", agency=self.agency, services=sorted(self._handlers))

    async def stop(self) -> None:
        """Stop taking inquiries, let those in progress finish, commit, disconnect."""
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                await runner
            finally:
                await self._shutdown()

    async def _shutdown(self) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self._drain_timeout)
            for task in pending:
                task.cancel()
        if self._failure is None:
            await self._commit()
        await self._close_kafka()

    async def _close_kafka(self) -> None:
        """Stop both clients (the producer even when the consumer's stop failed)."""
        from aiokafka.errors import KafkaError

        clients = [self._consumer, self._producer]
        self._consumer = self._producer = None
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
        return self._paused

    def pause(self) -> None:
        """Stop fetching from ``in`` (also partitions assigned later); handlers go on."""
        self._paused = True
        if self._consumer is not None:
            self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        """Fetch from ``in`` again."""
        self._paused = False
        if self._consumer is not None:
            self._consumer.resume(*self._consumer.assignment())

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
        self._count(inquiry.service, answer.status, manual=True)
        return inquiry

    # --- intake -------------------------------------------------------------------------------

    async def _intake(self) -> None:
        from aiokafka.errors import KafkaError

        consumer = self._consumer
        next_commit = 0.0
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._concurrency)
            except KafkaError as exc:
                what = f"the {self.agency} provider cannot read"
                raise translate_kafka_error(exc, what) from exc
            for tp, records in batches.items():
                for record in records:
                    await self._slots.acquire()
                    self._raise_failure()
                    self._tracker.start(tp, record.offset)
                    task = asyncio.create_task(self._take(tp, record))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            # At most every COMMIT_INTERVAL: under load each poll returns a few records, and
            # an OffsetCommit round trip per poll cost more than the answers (at least once
            # either way; a revocation or stop commits at once).
            if time.monotonic() >= next_commit:
                await self._commit()
                next_commit = time.monotonic() + COMMIT_INTERVAL
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise BrokerError(f"the {self.agency} provider stopped: {self._failure}") from (
                self._failure
            )

    async def _commit(self) -> None:
        from aiokafka.errors import KafkaError

        offsets = self._tracker.committable()
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partition: its records are redelivered to the new owner.
            log.warning("offset commit failed", agency=self.agency, error=str(exc))

    async def _take(self, tp: Any, record: Any) -> None:
        try:
            await self._handle_record(record)
            self._tracker.finish(tp, record.offset)
        except Exception as exc:  # Kafka failed under us: stop, leave the offset uncommitted
            log.exception("provider failed", agency=self.agency)
            self._failure = exc
            self._stopping.set()
        finally:
            self._slots.release()

    async def _handle_record(self, record: Any) -> None:
        try:
            request = decode_request(record.value, self._codec)
        except CodecError as exc:
            await self._dead_letter(record, exc)
            return
        key = str(request.inquiry_id)
        if not self._seen.claim(key):
            self._metrics.duplicates.labels(self.agency).inc()
            return
        try:
            # Each record runs in a task of its own, so this context is the record's alone:
            # the handler's own log lines carry these too.
            with structlog.contextvars.bound_contextvars(
                inquiry_id=key, agency=self.agency, service=request.service_id
            ):
                await self._answer(request, record)
        except BaseException:
            self._seen.release(key)
            raise

    async def _answer(self, request: ReceivedRequest, record: Any) -> None:
        handler = self._handlers.get(request.service_id)
        schemas = self._services.find(request.service_id)
        if handler is None or schemas is None:
            message = f"{self.agency} has no handler for {request.service_id}"
            await self._respond(request, Answer.error("NO_HANDLER", message), record)
            return
        problem = self._signature_problem(request, record) if self._verify_requests else None
        if problem is not None:
            log.warning("request signature not verified", problem=problem)
            await self._respond(request, Answer.error("BAD_SIGNATURE", problem), record)
            return
        try:
            payload = self._codec.decode(request.envelope["payload"], reader=schemas.request)
        except CodecError as exc:
            await self._dead_letter(record, exc)
            await self._respond(request, Answer.error("INVALID_REQUEST", exc.reason), record)
            return
        answer = await self._call(handler, request.inquiry(payload), record)
        if answer is None:
            return
        if answer.status is AnswerStatus.DEFERRED:
            key = str(request.inquiry_id).encode("ascii")  # the desk is compacted by this key
            await self.desk.put(self._producer, key, record.value, record.headers or ())
            self._count(request.service_id, answer.status, manual=True)
            return
        await self._respond(request, answer, record)

    def _signature_problem(self, request: ReceivedRequest, record: Any) -> str | None:
        """Why the requester's signature does not check out here, or None."""
        requester = str(request.envelope["requester"]["agency"])
        return verify_record(
            RecordType.REQUEST,
            inquiry_id=str(request.inquiry_id),
            signer_code=requester,
            signer=self._catalog.agency(requester),
            service=self._catalog.service(request.service_id),
            headers=record.headers or (),
            value=record.value,
        ).problem

    async def _call(self, handler: Handler, inquiry: Inquiry, record: Any) -> Answer | None:
        """The handler's answer; an error answer if it raised; None once past the deadline."""
        remaining = inquiry.deadline.timestamp() - time.time()
        if remaining <= 0:
            log.info(
                "inquiry past its deadline, not handled",
                agency=self.agency,
                inquiry_id=str(inquiry.id),
            )
            return None
        started = time.monotonic()
        timer = asyncio.timeout(remaining)
        try:
            async with timer:
                answer = await handler(inquiry)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and timer.expired():
                log.warning(
                    "handler ran past the deadline", agency=self.agency, inquiry_id=str(inquiry.id)
                )
                return None
            _log_handler_error(inquiry, exc)
            if self._dead_letter_errors:
                await self._dead_letter(record, exc, reason="handler-error")
            if isinstance(exc, ConnectorError):
                return Answer.error(exc.code, exc.message[:200], retriable=exc.retriable)
            return Answer.error("HANDLER_ERROR", type(exc).__name__)
        finally:
            self._handler_seconds(inquiry.service).observe(time.monotonic() - started)
        if not isinstance(answer, Answer):
            return Answer.error("HANDLER_ERROR", f"handler returned {type(answer).__name__}")
        return answer

    async def _respond(self, request: ReceivedRequest, answer: Answer, record: Any) -> None:
        try:
            value, headers = self._encode(request, answer)
        except CodecError as exc:
            log.warning(
                "answer does not fit the response schema",
                agency=self.agency,
                inquiry_id=str(request.inquiry_id),
                service=request.service_id,
            )
            value, headers = self._encode(request, Answer.error("INVALID_RESPONSE", exc.reason))
            answer = Answer.error("INVALID_RESPONSE")
        key = str(request.inquiry_id).encode("ascii")
        # The partition the request came from: the workers keep the inquiry's state under that
        # partition number (inquiry topics are co-partitioned), whatever partitioner its
        # requester used, and no key is hashed here.
        await self._send(self._out_topic, value, key, headers, partition=record.partition)
        self._count(request.service_id, answer.status, manual=False)

    def _encode(self, request: ReceivedRequest, answer: Answer) -> tuple[bytes, Any]:
        return encode_answer(
            self._codec, self._services, request, answer, manual=False, signer=self._signer
        )

    async def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Any,
        *,
        partition: int | None = None,
    ) -> None:
        from aiokafka.errors import KafkaError

        try:
            delivery = await self._producer.send(
                topic, value, key=key, headers=headers, partition=partition
            )
            await delivery
        except KafkaError as exc:
            raise BrokerError(f"cannot write to {topic}: {exc}") from exc

    async def _dead_letter(self, record: Any, exc: Exception, *, reason: str | None = None) -> None:
        letter = dead_letter_record(record, exc, component=f"provider:{self.agency}", reason=reason)
        why = header_value(letter.headers, HEADER_DLQ_REASON) or b""
        log.warning("dead-lettered", agency=self.agency, reason=why.decode(), offset=record.offset)
        await self._send(self._dlq_topic, letter.value, letter.key, letter.headers)
        self._dlq_metrics.records.labels("provider", why.decode()).inc()

    def _count(self, service: str, status: AnswerStatus, *, manual: bool) -> None:
        # labels() takes a lock and builds a key on every call: resolve each label set once.
        child = self._handled.get((service, status, manual))
        if child is None:
            label = service if service in self._handlers else UNKNOWN_LABEL
            mode = "manual" if manual else "automatic"
            child = self._metrics.handled.labels(self.agency, label, status.value, mode)
            self._handled[(service, status, manual)] = child
        child.inc()

    def _handler_seconds(self, service: str) -> Any:
        child = self._timers.get(service)
        if child is None:
            child = self._timers[service] = self._metrics.handler_seconds.labels(service)
        return child


def _log_handler_error(inquiry: Inquiry, exc: Exception) -> None:
    """Name the error by its type (and code), never its message: a handler's exception text
    often quotes what it looked up (``KeyError('0098765432')``, a national id). At DEBUG the
    traceback's frames follow, still without the message."""
    log.warning(
        "handler raised",
        inquiry_id=str(inquiry.id),
        service=inquiry.service,
        error_type=type(exc).__name__,
        error_code=exc.code if isinstance(exc, ConnectorError) else None,
    )
    log.debug(
        "handler traceback",
        inquiry_id=str(inquiry.id),
        frames="".join(traceback.format_tb(exc.__traceback__)),
    )


def _revocation_listener(provider: Provider) -> Any:
    """Commit what is done before partitions move away, then forget them."""
    from aiokafka import ConsumerRebalanceListener

    class Revocations(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
        async def on_partitions_revoked(self, revoked: Any) -> None:
            await provider._commit()
            for tp in revoked:
                provider._tracker.drop(tp)

        async def on_partitions_assigned(self, assigned: Any) -> None:
            if provider.paused:  # a rebalance must not un-pause intake
                provider._consumer.pause(*assigned)

    return Revocations()
