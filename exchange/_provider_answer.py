"""How the provider answers one record of ``<prefix>.in.<AGENCY>`` (see :mod:`exchange._provider`).

Decode the request (undecodable: dead-letter it), take each inquiry id once, check the
requester's signature if asked, decode the payload, call the handler within the deadline, put
a deferred answer on the desk or encode and write the response, and count what happened.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._catalog import Catalog
from exchange._codec import Codec
from exchange._desk import Desk
from exchange._dlq import dead_letter_record
from exchange._envelopes import ReceivedRequest, ServiceCache, decode_request, encode_answer
from exchange._errors import BrokerError, CodecError, ConnectorError
from exchange._intake import SeenInquiries
from exchange._metrics import UNKNOWN_LABEL, DlqMetrics, ProviderMetrics
from exchange._signing import Signer
from exchange._signing_policy import verify_record
from exchange._topology import Topics
from exchange._wire import HEADER_DLQ_REASON, RecordType, header_value

__all__ = ["Handler", "Responder"]

log = structlog.get_logger("exchange.provider")

#: A service handler: takes the inquiry, returns the answer.
Handler = Callable[[Inquiry], Awaitable[Answer]]


class Responder:
    """One agency's handlers and everything between an ``in`` record and its response."""

    def __init__(
        self,
        *,
        agency: str,
        topics: Topics,
        catalog: Catalog,
        codec: Codec,
        signer: Signer | None,
        desk: Desk,
        registry: CollectorRegistry,
        seen_capacity: int,
        dead_letter_errors: bool,
        verify_requests: bool,
    ) -> None:
        self.agency = agency
        self._out_topic = topics.out(agency)
        self._dlq_topic = topics.dlq
        self._catalog = catalog
        self._codec = codec
        self._services = ServiceCache(catalog, codec)
        self._signer = signer
        self.desk = desk
        self._dead_letter_errors = dead_letter_errors
        self._verify_requests = verify_requests
        self._metrics = ProviderMetrics(registry)
        self._dlq_metrics = DlqMetrics(registry)
        self._seen = SeenInquiries(seen_capacity)
        self._handlers: dict[str, Handler] = {}
        self._handled: dict[tuple[str, AnswerStatus, bool], Any] = {}
        self._timers: dict[str, Any] = {}
        #: The provider's producer while it runs (it starts and stops it).
        self.producer: Any = None

    @property
    def services(self) -> list[str]:
        """The services with a handler, sorted."""
        return sorted(self._handlers)

    def register(self, service: str, handler: Handler) -> None:
        """Route ``service`` to ``handler``."""
        self._handlers[service] = handler
        self._handled.clear()  # a service counted as unknown so far now has its label

    async def handle(self, record: Any) -> None:
        """Decode, answer (or dead-letter) one ``in`` record; once per inquiry id."""
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
            await self.desk.put(self.producer, key, record.value, record.headers or ())
            self.count(request.service_id, answer.status, manual=True)
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
        self.count(request.service_id, answer.status, manual=False)

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
            delivery = await self.producer.send(
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

    def count(self, service: str, status: AnswerStatus, *, manual: bool) -> None:
        """Count one answer in ``exchange_provider_handled_total``."""
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
