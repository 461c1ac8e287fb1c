"""Writing a dead letter: the record as consumed, unchanged, plus why it could not be processed.

See :mod:`exchange._dlq` for the format; every component builds its dead letters here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from exchange._errors import CodecError, ExchangeError
from exchange._models import DeadLetter

__all__ = [
    "HEADER_DLQ_REPLAYED_TO",
    "HEADER_DLQ_REPLAY_OF",
    "HEADER_REPLAYED_FROM",
    "MAX_MESSAGE",
    "PROCESSING_ERROR",
    "ConsumedRecord",
    "DeadLetterRecord",
    "Headers",
    "dead_letter_record",
    "without_dlq_headers",
]

#: On a replayed record: where in the DLQ it came from (``<dlq topic>:<partition>:<offset>``).
#: Not an ``exchange-dlq-*`` header, so it survives if the record is dead-lettered again.
HEADER_REPLAYED_FROM = "exchange-replayed-from"
#: On a replay marker in the DLQ: the dead letter it marks as replayed (``<partition>:<offset>``).
HEADER_DLQ_REPLAY_OF = "exchange-dlq-replay-of"
#: On a replay marker: the topic the dead letter went back to.
HEADER_DLQ_REPLAYED_TO = "exchange-dlq-replayed-to"
#: The reason of a record that decoded but could not be processed.
PROCESSING_ERROR = "processing-error"
#: Longest human message kept in a header: enough to explain, too short to carry a payload.
MAX_MESSAGE = 500

_DLQ_HEADER_PREFIX = "exchange-dlq-"
Headers = list[tuple[str, bytes]]


class ConsumedRecord(Protocol):
    """What a dead letter is built from: the fields of aiokafka's ``ConsumerRecord``."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


class DeadLetterRecord(NamedTuple):
    """The record to produce to ``<prefix>.dlq``."""

    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter_record(
    record: ConsumedRecord,
    error: BaseException,
    *,
    component: str,
    reason: str | None = None,
    message: str | None = None,
    now: datetime | None = None,
) -> DeadLetterRecord:
    """The dead letter of ``record``: its key and value untouched, the why in headers.

    ``reason`` defaults to the error's own (``bad-framing`` … for a :class:`CodecError`), else
    ``processing-error``; ``message`` to the error's text, cut to 500 characters. Headers of
    an earlier dead-lettering (a replayed record that failed again) are replaced.
    """
    if reason is None:
        reason = error.reason if isinstance(error, CodecError) else PROCESSING_ERROR
    if message is None:
        message = error.message if isinstance(error, ExchangeError) else _describe(error)
    letter = DeadLetter(
        reason=reason,
        message=message[:MAX_MESSAGE],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_timestamp=_from_millis(record.timestamp),
        original_key=record.key,
        dead_lettered_at=now or datetime.now(UTC),
        component=component,
    )
    return DeadLetterRecord(
        record.key, record.value, without_dlq_headers(record.headers) + letter.headers()
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _from_millis(millis: int | None) -> datetime | None:
    return None if millis is None or millis < 0 else datetime.fromtimestamp(millis / 1000, UTC)


def without_dlq_headers(headers: Iterable[tuple[str, bytes]] | None) -> Headers:
    """``headers`` without the ``exchange-dlq-*`` ones of an earlier dead-lettering."""
    return [(k, v) for k, v in headers or () if not k.startswith(_DLQ_HEADER_PREFIX)]
