"""An officer at the tax administration's desk, answering deferred inquiries by hand.

The tax provider defers taxpayers under review to its desk (``Answer.defer()``); during the
workload this clerk polls the desk and answers each one from the register, as a person with
the file in front of them would. The answers travel with ``answered_by=MANUAL``, so the
summary and the compliance report count them as manual. The clerk goes home when the workload
ends: with ``--keep-running``, what is deferred afterwards waits for ``exchange desk answer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from exchange._answer import Inquiry
from exchange._catalog_model import Catalog
from exchange._codec import Codec
from exchange._desk import Desk
from exchange._errors import BrokerError, InquiryError
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings
from exchange.demo._agencies import DemoAgencies
from exchange.demo._answers import lookup

__all__ = ["Clerk"]

log = structlog.get_logger("exchange.demo")

#: Seconds between looks at the desk.
POLL_INTERVAL = 0.3


class Clerk:
    """Answers the deferred inquiries of ``agency`` until cancelled."""

    def __init__(
        self,
        settings: ExchangeSettings,
        catalog: Catalog,
        codec: Codec,
        agencies: DemoAgencies,
        agency: str = "TAX",
    ) -> None:
        self._desk = Desk(settings, agency, catalog, codec)
        self._agencies = agencies
        self._settings = settings
        self.answered = 0

    async def run(self) -> None:
        """Poll the desk and answer what is there, until cancelled."""
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(
            **kafka_options(self._settings), acks="all", enable_idempotence=True
        )
        try:
            await producer.start()
            async with self._desk:  # one consumer for every look at the desk, not one per look
                while True:
                    pending = await self._desk.pending()
                    # Several officers: each answer reads the desk again, so they go in parallel.
                    await asyncio.gather(*(self._answer(producer, i) for i in pending))
                    await asyncio.sleep(POLL_INTERVAL)
        except KafkaError as exc:
            raise BrokerError(f"the desk clerk stopped: {exc}") from exc
        finally:
            await producer.stop()

    async def _answer(self, producer: Any, inquiry: Inquiry) -> None:
        record = lookup(self._agencies.registers, inquiry.service, inquiry.payload)
        answer = self._agencies.answer(inquiry.service, record, inquiry.payload)
        with contextlib.suppress(InquiryError):  # answered meanwhile
            await self._desk.answer(producer, inquiry.id, answer)
            self.answered += 1
