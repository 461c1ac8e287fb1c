"""The manual desk: inquiries a provider's handler deferred to a person.

A handler that returns ``Answer.defer()`` puts the inquiry on ``<prefix>.desk.<AGENCY>``, a
compacted topic keyed by inquiry id whose value is the request record exactly as it arrived.
Answering it (``exchange desk answer …``, :func:`answer_manually`) writes the provider's response
with ``answered_by=MANUAL`` to ``<prefix>.out.<AGENCY>`` and then a tombstone for that key on
the desk. The pending list is the desk's latest value per key, tombstones removed: durable,
readable by any process of the agency, and no bigger than what is pending (compaction).

Guarantees, honestly: the response is written before the tombstone, so a crash between the
two leaves an answered inquiry listed; answering it again writes a second response, which the
stream workers drop as a duplicate (the requester still gets one outcome). An inquiry answered
after its deadline is delivered nowhere: the bus already settled it as ``TIMED_OUT`` and
records the response as late.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._catalog import load_catalog
from exchange._catalog_model import Catalog
from exchange._codec import Codec, SchemaStore
from exchange._desk_reader import DeskReader
from exchange._envelopes import ReceivedRequest, ServiceCache, decode_request, encode_answer
from exchange._errors import BrokerError, CodecError, InquiryError, InquiryRejectedError
from exchange._kafka import connection_error, error_for_code, kafka_options
from exchange._settings import ExchangeSettings
from exchange._signing import Signer
from exchange._signing_keys import load_signer
from exchange._topology import DESK_CONFIG, Topics

__all__ = ["Desk", "answer_manually", "desk_topic", "ensure_desk_topic", "list_deferred"]


def desk_topic(settings: ExchangeSettings, agency: str) -> str:
    """``<prefix>.desk.<AGENCY>``."""
    return Topics.for_settings(settings).desk(agency)


async def ensure_desk_topic(settings: ExchangeSettings, agency: str) -> None:
    """Create the agency's desk topic if it does not exist (compacted, inquiry partitions).

    ``exchange topics apply`` creates it for every provider; this covers a provider started
    against a bus set up without it (with ACLs in place, the topic exists and this only looks).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    topic = desk_topic(settings, agency)
    options = kafka_options(settings)
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        if topic in await admin.list_topics():
            return
        new = NewTopic(
            topic, settings.partitions, settings.replication_factor, topic_configs=dict(DESK_CONFIG)
        )
        response = await admin.create_topics([new])
        errors = [(code, msg) for _name, code, msg in response.topic_errors if code not in {0, 36}]
        if errors:  # 36: TOPIC_ALREADY_EXISTS, another process won the race
            raise error_for_code(*errors[0], f"cannot create {topic}")
    except KafkaError as exc:
        what = f"cannot create {topic}"
        raise await connection_error(exc, what, options["bootstrap_servers"], options) from exc
    finally:
        await admin.close()


class Desk:
    """Reads and answers one agency's deferred inquiries (no producer of its own).

    Each look at the desk reads its topic with a consumer of its own; a long-lived process
    that looks often opens the desk (``async with desk``) to keep one consumer between looks
    (see :mod:`exchange._desk_reader`).
    """

    def __init__(
        self,
        settings: ExchangeSettings,
        agency: str,
        catalog: Catalog,
        codec: Codec,
        signer: Signer | None = None,
    ) -> None:
        self._settings = settings
        # Manual answers are signed like automatic ones (EXCHANGE_SIGNING_KEY[_FILE], if set).
        self._signer = signer if signer is not None else load_signer(agency, settings)
        self.agency = agency
        self.topic = desk_topic(settings, agency)
        self.out_topic = Topics.for_settings(settings).out(agency)
        self._codec = codec
        self._services = ServiceCache(catalog, codec)
        self._reader = DeskReader(settings, self.topic)

    async def open(self) -> None:
        """Keep one consumer of the desk topic for every look until :meth:`close`."""
        await self._reader.open()

    async def close(self) -> None:
        """Stop the kept consumer: each look reads with a consumer of its own again."""
        await self._reader.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def put(self, producer: Any, key: bytes, value: bytes, headers: Any) -> None:
        """Put a deferred request on the desk, as received; returns once Kafka has it."""
        await _publish(producer, self.topic, value, key, list(headers))

    async def pending(self) -> list[Inquiry]:
        """Every inquiry waiting for a person, oldest deadline first."""
        records = await self._reader.read()
        inquiries = [
            self._inquiry(decode_request(value, self._codec)) for value in records.values()
        ]
        return sorted(inquiries, key=lambda inquiry: inquiry.deadline)

    async def answer(self, producer: Any, inquiry_id: uuid.UUID | str, answer: Answer) -> Inquiry:
        """Publish a MANUAL response to a deferred inquiry, then take it off the desk.

        :class:`InquiryError` if the inquiry is not on the desk (never deferred, or answered
        already); :class:`InquiryRejectedError` (``INVALID_PAYLOAD``) if the payload does not
        fit the service's response schema.
        """
        if answer.status is AnswerStatus.DEFERRED:
            raise InquiryError("a manual answer cannot be deferred again")
        key = str(inquiry_id).encode("ascii")
        value = (await self._reader.read(only_key=key)).get(key)
        if value is None:
            raise InquiryError(f"inquiry {inquiry_id} is not waiting on the {self.agency} desk")
        request = decode_request(value, self._codec)
        response, headers = self._response(request, answer)
        await _publish(producer, self.out_topic, response, key, headers)
        await _publish(producer, self.topic, None, key, [])  # tombstone: off the desk
        return self._inquiry(request)

    def _response(self, request: ReceivedRequest, answer: Answer) -> tuple[bytes, Any]:
        try:
            return encode_answer(
                self._codec, self._services, request, answer, manual=True, signer=self._signer
            )
        except CodecError as exc:
            raise InquiryRejectedError(
                f"answer does not fit the response schema of {request.service_id}: {exc}",
                reason="INVALID_PAYLOAD",
            ) from exc

    def _inquiry(self, request: ReceivedRequest) -> Inquiry:
        schemas = self._services.find(request.service_id)
        payload = self._codec.decode(
            request.envelope["payload"], reader=schemas.request if schemas else None
        )
        return request.inquiry(payload)


async def _publish(
    producer: Any, topic: str, value: bytes | None, key: bytes, headers: list[tuple[str, bytes]]
) -> None:
    """Send one record and wait until Kafka has it; :class:`BrokerError` if it cannot."""
    from aiokafka.errors import KafkaError

    try:
        delivery = await producer.send(topic, value, key=key, headers=headers)
        await delivery
    except KafkaError as exc:
        raise BrokerError(f"cannot write to {topic}: {exc}") from exc


def manual_answer(
    status: str | AnswerStatus,
    payload: dict[str, Any] | None = None,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Answer:
    """The :class:`Answer` a person gives: ``FOUND``/``NOT_FOUND`` (payload) or ``ERROR``."""
    try:
        status = AnswerStatus(status)
    except ValueError as exc:
        raise InquiryError(f"status must be FOUND, NOT_FOUND or ERROR, not {status!r}") from exc
    if status is AnswerStatus.FOUND:
        if payload is None:
            raise InquiryError("a FOUND answer needs a payload")
        return Answer.found(payload)
    if status is AnswerStatus.NOT_FOUND:
        return Answer.not_found(payload)
    if status is AnswerStatus.ERROR:
        return Answer.error(error_code or "MANUAL_ERROR", error_message or "")
    raise InquiryError("a manual answer cannot be deferred again")


def _desk_for(settings: ExchangeSettings, agency: str, catalog: Catalog | None) -> Desk:
    if catalog is None:
        catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    codec = Codec(
        SchemaStore.from_directory(settings.schemas_path),
        max_record_bytes=settings.max_record_bytes,
    )
    return Desk(settings, agency, catalog, codec)


async def list_deferred(
    settings: ExchangeSettings, agency: str, *, catalog: Catalog | None = None
) -> list[Inquiry]:
    """The agency's inquiries waiting for a person, oldest deadline first."""
    return await _desk_for(settings, agency, catalog).pending()


async def answer_manually(
    settings: ExchangeSettings,
    agency: str,
    inquiry_id: uuid.UUID | str,
    status: str | AnswerStatus,
    payload: dict[str, Any] | None = None,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    catalog: Catalog | None = None,
) -> Inquiry:
    """Answer one deferred inquiry of ``agency`` as a person, from any process (the CLI).

    Publishes the response with ``answered_by=MANUAL`` and takes the inquiry off the desk;
    returns the inquiry answered. :class:`InquiryError` if it is not waiting on the desk.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    answer = manual_answer(status, payload, error_code=error_code, error_message=error_message)
    desk = _desk_for(settings, agency, catalog)
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", enable_idempotence=True)
    try:
        await producer.start()
        return await desk.answer(producer, inquiry_id, answer)
    except KafkaError as exc:
        raise BrokerError(f"cannot answer inquiry {inquiry_id}: {exc}") from exc
    finally:
        await producer.stop()
