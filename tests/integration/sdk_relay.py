"""A minimal pass-through relay for the SDK's own tests: *not* the bus's stream workers.

It forwards each request from ``out.<requester>`` to ``in.<provider>`` unchanged and turns the
first response to it into an ``InquiryOutcome`` on ``replies.<requester>`` with the request's
``exchange-reply-to``. No policy, no transactions, no timeouts, no audit: just enough topology
for the client and provider SDKs to meet on a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from exchange import ExchangeSettings
from exchange._codec import Codec, SchemaStore
from exchange._kafka import client_options, resolve_bootstrap
from exchange._models import (
    InquiryOutcome,
    InquiryRequest,
    InquiryResponse,
    OutcomeKind,
    ResponseStatus,
)
from exchange._wire import HEADER_TYPE, RecordType, header_value

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


class PassThroughRelay:
    """Relays requests and responses between the given agencies' topics (test use only)."""

    def __init__(self, settings: ExchangeSettings, agencies: list[str]) -> None:
        self._settings = settings
        self._prefix = settings.topic_prefix
        self._agencies = agencies
        self._codec = Codec(SchemaStore.from_directory(SCHEMAS))
        self._pending: dict[str, InquiryRequest] = {}
        self._task: asyncio.Task[None] | None = None
        self.forwarded = 0
        self.settled = 0

    async def __aenter__(self) -> PassThroughRelay:
        options = {"bootstrap_servers": resolve_bootstrap(self._settings)}
        options.update(client_options(self._settings))
        self._producer = AIOKafkaProducer(**options, acks="all", linger_ms=1)
        self._consumer = AIOKafkaConsumer(
            *[f"{self._prefix}.out.{agency}" for agency in self._agencies],
            **options,
            group_id=f"{self._prefix}.test-relay",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await self._producer.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            await self._consumer.stop()
            await self._producer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            sends = [await self._relay(r) for records in batches.values() for r in records]
            if sends:
                await asyncio.gather(*(s for s in sends if s is not None))

    async def _relay(self, record: Any) -> Any:
        kind = header_value(record.headers, HEADER_TYPE)
        if kind == RecordType.REQUEST.value.encode():
            request = self._codec.decode_model(record.value, InquiryRequest)
            self._pending[str(request.inquiry_id)] = request
            self.forwarded += 1
            topic = f"{self._prefix}.in.{request.provider.agency}"
            return await self._producer.send(
                topic, record.value, key=record.key, headers=list(record.headers)
            )
        response = self._codec.decode_model(record.value, InquiryResponse)
        request = self._pending.pop(str(response.inquiry_id), None)
        if request is None:  # late or duplicate: the bus would audit it; here, drop it
            return None
        outcome = _outcome(request, response)
        self.settled += 1
        return await self._producer.send(
            f"{self._prefix}.replies.{request.requester.agency}",
            self._codec.encode_model(outcome),
            key=record.key,
            headers=outcome.headers(),
        )


def _outcome(request: InquiryRequest, response: InquiryResponse) -> InquiryOutcome:
    failed = response.status is ResponseStatus.ERROR
    return InquiryOutcome(
        inquiry_id=request.inquiry_id,
        requester=request.requester,
        provider=request.provider,
        service_code=request.service_code,
        service_version=request.service_version,
        purpose=request.purpose,
        case_reference=request.case_reference,
        created_at=request.created_at,
        deadline=request.deadline,
        reply_to=request.reply_to,
        kind=OutcomeKind.FAILED if failed else OutcomeKind.ANSWERED,
        status=response.status,
        error=response.error,
        answered_by=response.answered_by,
        settled_at=datetime.now(UTC),
        payload=response.payload,
    )
