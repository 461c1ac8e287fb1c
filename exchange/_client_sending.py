"""The client's sending side: register an inquiry in flight, then produce it (or claim it).

One path serves both ways of asking: :meth:`Sender.dispatch` for a caller that awaits the
outcome (``inquire``, ``inquire_many``) and :meth:`Sender.stream` for fire-and-forget
(``send``, outcomes from ``outcomes()``); they differ only in how the inquiry is registered.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import structlog

from exchange._durable import ReplyLedger
from exchange._envelopes import EncodedInquiry
from exchange._errors import BrokerError
from exchange._metrics import ClientMetrics
from exchange._outcome import Outcome, OutcomeKind
from exchange._replies import InFlight

__all__ = ["SETTLE_GRACE", "Sender"]

log = structlog.get_logger("exchange.client")

#: How long past the bus deadline a caller without a timeout keeps waiting: the workers'
#: timer settles the inquiry at the deadline, and its outcome still has to travel.
SETTLE_GRACE = 5.0


class Sender:
    """Sends inquiries to one out topic and keeps the client's outcome metrics."""

    def __init__(
        self,
        topic: str,
        in_flight: InFlight,
        ledger: ReplyLedger | None,
        metrics: ClientMetrics,
    ) -> None:
        self.topic = topic
        self.producer: Any = None
        self._in_flight = in_flight
        self._ledger = ledger
        self._metrics = metrics
        self._children: dict[tuple[str, str, OutcomeKind], tuple[Any, Any]] = {}

    def create(self, options: dict[str, Any], linger: float) -> Any:
        """Make the (unstarted) producer: ``acks=all``, idempotent, a short linger to batch."""
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=int(linger * 1000)
        )
        return self.producer

    async def stop(self) -> None:
        """Stop the producer (flushing what was sent), if there is one."""
        if self.producer is not None:
            await self.producer.stop()

    async def dispatch(self, item: EncodedInquiry, wait: float | None) -> asyncio.Future[Outcome]:
        """Register and send one inquiry; the returned future resolves to its outcome."""
        if wait is None:
            wait = item.seconds_to_deadline() + SETTLE_GRACE
        future = self._in_flight.expect(item.inquiry_id, item.service, item.provider, wait)
        future.add_done_callback(functools.partial(self._settled, item.key_text))
        await self._send(item)
        return future

    async def stream(self, item: EncodedInquiry, wait: float | None) -> None:
        """Register and send one inquiry whose outcome goes to the streamed queue."""
        self._in_flight.expect_streamed(item.inquiry_id, item.service, item.provider, wait)
        await self._send(item)

    async def _send(self, item: EncodedInquiry) -> None:
        self._metrics.in_flight.inc()
        if not self._claim(item):
            await self._produce(item)

    def _claim(self, item: EncodedInquiry) -> bool:
        """Durable: settle from an outcome read before this send (the previous run's); True
        when there was one, so the inquiry need not go out again."""
        parked = self._ledger.claim(item.key_text) if self._ledger is not None else None
        if parked is None:
            return False
        self._in_flight.settle(item.key_text, parked)
        return True

    def _settled(self, inquiry_id: str, future: asyncio.Future[Outcome]) -> None:
        self._metrics.in_flight.dec()
        if future.cancelled():  # the caller gave up: drop the inquiry, its outcome is late
            self._in_flight.forget(inquiry_id)
        elif future.exception() is None:
            self._count(future.result())

    def settled_streamed(self, outcome: Outcome) -> None:
        """A streamed inquiry's outcome was taken from the queue: no longer in flight."""
        self._metrics.in_flight.dec()
        self._count(outcome)

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
            delivery = await self.producer.send(
                self.topic, item.value, key=item.key, headers=item.headers
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
