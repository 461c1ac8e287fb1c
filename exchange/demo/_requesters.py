"""The requesting agencies of the demo: one SDK client per requester, and one broken client.

Every allowed, not-allowed and wrong-purpose inquiry goes through an
:class:`~exchange.ExchangeClient` of its requester (``send()``; outcomes come out of
``outcomes()``). The SDK refuses to send an invalid payload, so the inquiries that show
``INVALID_PAYLOAD`` and the garbage records are written raw by :class:`BrokenClient`, as a
client in another language with a bug would write them; their outcomes are read off the
replies topics by the observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import time
import uuid
from typing import Any

from exchange._catalog_model import Catalog
from exchange._client import ExchangeClient
from exchange._codec import Codec
from exchange._envelopes import ServiceCache, with_defaults
from exchange._errors import BrokerError
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings
from exchange._topology import Topics
from exchange._wire import INQUIRY_REQUEST, RecordType, inquiry_headers
from exchange.demo._tally import Sent, Tally
from exchange.demo._workload import Intent, Planned

__all__ = ["BrokenClient", "Requesters"]

#: How long past the deadline a client waits for an outcome before calling it lost.
SETTLE_GRACE = 10.0


class Requesters:
    """A started client per requester (``AGENCY`` or ``AGENCY/subsystem``) and a broken one."""

    def __init__(
        self,
        settings: ExchangeSettings,
        catalog: Catalog,
        codec: Codec,
        tally: Tally,
        *,
        deadline: float,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._tally = tally
        self._deadline = deadline
        self.clients: dict[str, ExchangeClient] = {}
        self.broken = BrokenClient(settings, catalog, codec)
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, requesters: list[str]) -> None:
        """Connect one client per requester, and the broken client."""
        for requester in requesters:
            agency, _, subsystem = requester.partition("/")
            client = ExchangeClient(
                agency=agency,
                subsystem=subsystem or None,
                settings=self._settings,
                catalog=self._catalog,
            )
            await client.start()
            self.clients[requester] = client
            self._readers.append(asyncio.create_task(self._collect(client)))
        await self.broken.start()

    async def _collect(self, client: ExchangeClient) -> None:
        async for outcome in client.outcomes():
            self._tally.record_client(outcome)

    async def send(self, planned: Planned) -> None:
        """Send one planned inquiry and put it in the tally."""
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._deadline)
        if planned.intent is Intent.INVALID_PAYLOAD:
            raw_id = await self.broken.send(planned, deadline)
            self._tally.record_sent(raw_id, _sent(planned, via_client=False))
            return
        client = self.clients[planned.requester]
        inquiry_id = await client.send(
            planned.service,
            planned.payload,
            purpose=planned.purpose,
            timeout=self._deadline + SETTLE_GRACE,
            case_reference=planned.case_reference,
            end_user_id=planned.end_user_id,
            subject=planned.subject,
            deadline=deadline,
        )
        self._tally.record_sent(str(inquiry_id), _sent(planned, via_client=True))

    async def garbage(self, agency: str) -> None:
        """Write one record that is no inquiry at all to ``agency``'s out topic."""
        await self.broken.garbage(agency)
        self._tally.garbage_sent += 1

    async def close(self) -> None:
        """Stop collecting outcomes and disconnect every client."""
        for reader in self._readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for client in self.clients.values():
            await client.close()
        await self.broken.close()


def _sent(planned: Planned, *, via_client: bool) -> Sent:
    return Sent(
        service=planned.service,
        requester=planned.requester,
        intent=planned.intent,
        at=time.monotonic(),
        via_client=via_client,
    )


class BrokenClient:
    """Writes what a buggy client of another language would: wrong payloads, garbage."""

    def __init__(self, settings: ExchangeSettings, catalog: Catalog, codec: Codec) -> None:
        self._settings = settings
        self._catalog = catalog
        self._codec = codec
        self._services = ServiceCache(catalog, codec)
        self._envelope = codec.store.get(INQUIRY_REQUEST)
        self._topics = Topics.for_settings(settings)
        self.instance_id = uuid.uuid4().hex
        self._rng = random.Random(7)  # noqa: S311  # which garbage, not security
        self._producer: Any = None

    async def start(self) -> None:
        """Connect the producer."""
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        self._producer = AIOKafkaProducer(
            **kafka_options(self._settings), acks="all", enable_idempotence=True, linger_ms=2
        )
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise BrokerError(f"cannot connect the demo's raw writer: {exc}") from exc

    async def send(self, planned: Planned, deadline: dt.datetime) -> str:
        """An inquiry to ``planned.service`` carrying ``planned.payload_service``'s request."""
        assert planned.payload_service is not None, "only invalid-payload inquiries come here"
        service = self._catalog.service(planned.service)
        assert service is not None, "the workload names catalog services only"
        wrong = self._services.get(planned.payload_service)
        payload = self._codec.encode(
            wrong.request, with_defaults(wrong.request_defaults, planned.payload)
        )
        inquiry_id = str(uuid.uuid4())
        now_ms = int(time.time() * 1000)
        envelope = {
            "inquiry_id": inquiry_id,
            "requester": {"agency": planned.agency, "subsystem": planned.subsystem},
            "provider": {"agency": service.provider, "subsystem": service.provider_subsystem},
            "service_code": service.code,
            "service_version": service.version,
            "purpose": planned.purpose,
            "case_reference": planned.case_reference,
            "end_user_id": planned.end_user_id,
            "subject": None,
            "created_at": now_ms,
            "deadline": int(deadline.timestamp() * 1000),
            "trace_parent": None,
            "reply_to": self.instance_id,
            "payload": payload,
        }
        value = self._codec.encode(self._envelope, envelope)
        headers = inquiry_headers(RecordType.REQUEST, inquiry_id, reply_to=self.instance_id)
        topic = self._topics.out(planned.agency)
        await self._producer.send(topic, value, key=inquiry_id.encode(), headers=headers)
        return inquiry_id

    async def garbage(self, agency: str) -> None:
        """A JSON document or random bytes where an Avro inquiry belongs."""
        if self._rng.random() < 0.5:
            value = json.dumps({"national_id": "0499370899", "query": "verify"}).encode()
        else:
            value = os.urandom(self._rng.randrange(8, 200))
        key = str(uuid.uuid4()).encode()
        await self._producer.send(self._topics.out(agency), value, key=key)

    async def close(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
