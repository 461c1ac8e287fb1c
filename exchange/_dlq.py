"""Dead letters: how every component writes them, and how operators read and replay them (pure).

A dead letter is the record that could not be decoded or processed, written to
``<prefix>.dlq`` **unchanged**: same key, same value bytes, its original headers, plus the
``exchange-dlq-*`` headers of :class:`~exchange._models.DeadLetter` (reason, message, source
topic/partition/offset/timestamp, when, which component). Every component builds it with
:func:`dead_letter_record`, so all dead letters look alike::

    letter = dead_letter_record(record, exc, component="worker")
    await producer.send(topics.dlq, letter.value, key=letter.key, headers=letter.headers)

Replaying (``exchange dlq replay``) writes a dead letter's key and value back to its source
topic with its original headers and ``exchange-replayed-from: <dlq>:<partition>:<offset>``,
and, in the same transaction, a small *replay marker* to the dead letter's own DLQ partition
(no key, empty value, ``exchange-dlq-replay-of: <partition>:<offset>``). The markers let
``show`` say which dead letters were replayed and ``replay`` skip them unless asked again.
The I/O (reading the DLQ, producing) is in :mod:`exchange._dlq_io`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from exchange._codec import Codec
from exchange._errors import CodecError, ExchangeError
from exchange._models import DeadLetter
from exchange._topology import Topics
from exchange._wire import (
    CONFLUENT_MAGIC,
    HEADER_DLQ_REASON,
    SINGLE_OBJECT_MAGIC,
    header_value,
)

__all__ = [
    "HEADER_DLQ_REPLAYED_TO",
    "HEADER_DLQ_REPLAY_OF",
    "HEADER_REPLAYED_FROM",
    "PROCESSING_ERROR",
    "ConsumedRecord",
    "DeadLetterEntry",
    "DeadLetterRecord",
    "DlqListing",
    "Replay",
    "choose_for_replay",
    "dead_letter_record",
    "parse_entry_id",
    "preview",
    "replay_marker",
    "replay_record",
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
        record.key, record.value, _without_dlq(record.headers) + letter.headers()
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _from_millis(millis: int | None) -> datetime | None:
    return None if millis is None or millis < 0 else datetime.fromtimestamp(millis / 1000, UTC)


def _without_dlq(headers: Iterable[tuple[str, bytes]] | None) -> Headers:
    return [(k, v) for k, v in headers or () if not k.startswith(_DLQ_HEADER_PREFIX)]


# --- Reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One dead letter as read from the DLQ; ``letter`` is None if its headers are unreadable."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    letter: DeadLetter | None
    replayed: bool = False

    @property
    def id(self) -> str:
        """``<partition>:<offset>`` in the DLQ: what ``dlq replay --offset`` takes."""
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        """The machine-readable reason, ``?`` when the headers do not say."""
        return self.letter.reason if self.letter else "?"

    def to_json(self, codec: Codec | None = None) -> dict[str, Any]:
        """A plain dict for ``--json``; the value as a preview, never in full."""
        letter = (
            self.letter.model_dump(mode="json", exclude={"original_key"}) if self.letter else None
        )
        return {
            "id": self.id,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "letter": letter,
            "key": _text_or_hex(self.key),
            "size": len(self.value or b""),
            "preview": preview(self.value, codec),
            "replayed": self.replayed,
        }


def parse_entry_id(text: str) -> tuple[int | None, int]:
    """``"3:120"`` -> ``(3, 120)``; ``"120"`` -> ``(None, 120)`` (any partition)."""
    partition, _, offset = text.rpartition(":")
    try:
        return (int(partition) if partition else None), int(offset)
    except ValueError:
        raise ValueError(f"{text!r} is not <partition>:<offset> or <offset>") from None


@dataclass
class DlqListing:
    """Folds DLQ records into the dead letters wanted, remembering which were replayed.

    ``reason`` and ``ids`` filter; ``limit`` keeps only the newest that many (by the DLQ
    record's timestamp), so memory stays bounded however long the DLQ is.
    """

    reason: str | None = None
    ids: Sequence[tuple[int | None, int]] | None = None
    limit: int | None = None
    _kept: list[tuple[int, int, int, DeadLetterEntry]] = field(default_factory=list)
    _replayed: set[str] = field(default_factory=set)

    def add(self, record: ConsumedRecord) -> None:
        """Take one record read from the DLQ (dead letter or replay marker)."""
        marker = header_value(record.headers, HEADER_DLQ_REPLAY_OF)
        if marker is not None:
            self._replayed.add(marker.decode("ascii", errors="replace"))
            return
        # Cheap checks before validating the headers: show reads the whole DLQ.
        order = (record.timestamp or 0, record.partition, record.offset)
        full = self.limit is not None and len(self._kept) >= self.limit
        if (full and (not self._kept or order <= self._kept[0][:3])) or not self._may_want(record):
            return
        entry = _entry(record)
        if not self._wanted(entry):
            return
        if full:
            heapq.heappushpop(self._kept, (*order, entry))
        else:
            heapq.heappush(self._kept, (*order, entry))

    def entries(self) -> list[DeadLetterEntry]:
        """The dead letters kept, oldest first, each marked if a replay marker names it."""
        ordered = [item[3] for item in sorted(self._kept, key=lambda item: item[:3])]
        return [replace(e, replayed=e.id in self._replayed) for e in ordered]

    def _may_want(self, record: ConsumedRecord) -> bool:
        if self.reason is None or self.reason == "?":
            return True
        return header_value(record.headers, HEADER_DLQ_REASON) == self.reason.encode()

    def _wanted(self, entry: DeadLetterEntry) -> bool:
        if self.reason is not None and entry.reason != self.reason:
            return False
        if self.ids is None:
            return True
        return any(o == entry.offset and p in (None, entry.partition) for p, o in self.ids)


def _entry(record: ConsumedRecord) -> DeadLetterEntry:
    headers = tuple(record.headers or ())
    try:
        letter: DeadLetter | None = DeadLetter.from_headers(headers, key=record.key)
    except CodecError:
        letter = None  # not written by the bus (or damaged): still listed, never replayed
    return DeadLetterEntry(
        record.partition,
        record.offset,
        record.timestamp or 0,
        record.key,
        record.value,
        headers,
        letter,
    )


# --- Replaying ----------------------------------------------------------------------------------


class Replay(NamedTuple):
    """A record to produce: where, and its key, value and headers."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers


def choose_for_replay(
    entries: Sequence[DeadLetterEntry],
    ids: Sequence[tuple[int | None, int]],
    topics: Topics,
    *,
    again: bool = False,
) -> tuple[list[DeadLetterEntry], list[tuple[str, str]]]:
    """The entries to replay, and ``(id, why)`` for each one left out.

    :class:`ValueError` if an id names no dead letter, or an offset without a partition
    names several. Left out: dead letters whose headers do not name a source, whose source
    is not a topic of the bus (headers are data: never write elsewhere on their say-so), and
    those replayed before unless ``again``.
    """
    for partition, offset in ids:
        found = [e.id for e in entries if e.offset == offset and partition in (None, e.partition)]
        if not found:
            raise ValueError(
                f"no dead letter {'' if partition is None else f'{partition}:'}{offset}"
            )
        if len(found) > 1:
            raise ValueError(f"offset {offset} is in several DLQ partitions: give one of {found}")
    chosen, skipped = [], []
    for entry in entries:
        why = _why_not(entry, topics, again=again)
        if why is None:
            chosen.append(entry)
        else:
            skipped.append((entry.id, why))
    return chosen, skipped


def _why_not(entry: DeadLetterEntry, topics: Topics, *, again: bool) -> str | None:
    if entry.letter is None:
        return "its headers do not say where it came from"
    if topics.parse(entry.letter.source_topic) is None:
        return f"{entry.letter.source_topic} is not a topic of the bus"
    if entry.replayed and not again:
        return "replayed before (--again to replay it anyway)"
    return None


def replay_record(entry: DeadLetterEntry, dlq_topic: str) -> Replay:
    """The dead letter's original record, for its source topic, with a replay header.

    The partition is left to the producer's key hash, as for the original (the source
    partition may no longer be where the key belongs); a record without a key goes back to
    its source partition.
    """
    if entry.letter is None:
        raise ValueError(f"dead letter {entry.id} does not say where it came from")
    headers = _without_dlq(entry.headers)
    headers.append((HEADER_REPLAYED_FROM, f"{dlq_topic}:{entry.id}".encode("ascii")))
    partition = None if entry.key is not None else entry.letter.source_partition
    return Replay(entry.letter.source_topic, partition, entry.key, entry.value, headers)


def replay_marker(entry: DeadLetterEntry, dlq_topic: str, target: str) -> Replay:
    """The marker that records, on the dead letter's own partition, that it was replayed."""
    headers = [
        (HEADER_DLQ_REPLAY_OF, entry.id.encode("ascii")),
        (HEADER_DLQ_REPLAYED_TO, target.encode("utf-8")),
    ]
    return Replay(dlq_topic, entry.partition, None, b"", headers)


# --- Preview ------------------------------------------------------------------------------------

_ENVELOPE_IDENTITY = ("inquiry_id", "service_code", "service_version")


def preview(value: bytes | None, codec: Codec | None = None, *, width: int = 16) -> str:
    """A short, payload-free look at a value: its Avro schema and inquiry identity if the
    codec knows it, the Confluent schema id, or the first ``width`` bytes in hex."""
    if value is None:
        return "(no value)"
    if codec is not None and value[:2] == SINGLE_OBJECT_MAGIC:
        return _avro_preview(value, codec, width)
    if value[:1] == CONFLUENT_MAGIC and len(value) >= 5:
        schema_id = int.from_bytes(value[1:5], "big")
        return f"{_hex(value, width)} (Confluent framing? schema id {schema_id})"
    return _hex(value, width)


def _avro_preview(value: bytes, codec: Codec, width: int) -> str:
    try:
        schema = codec.peek(value)
    except CodecError as exc:
        return f"{_hex(value, width)} ({exc.reason})"
    try:
        decoded = codec.decode(value)
    except CodecError as exc:
        return f"{schema.name}, does not decode ({exc.reason})"
    identity = [f"{k}={decoded[k]}" for k in _ENVELOPE_IDENTITY if k in decoded]
    for role in ("requester", "provider", "responder"):
        ref = decoded.get(role)
        if isinstance(ref, dict) and "agency" in ref:
            identity.append(f"{role}={ref['agency']}")
    return f"{schema.name} " + (" ".join(identity) if identity else "(decodes)")


def _hex(value: bytes, width: int) -> str:
    more = "…" if len(value) > width else ""
    return value[:width].hex(" ") + more


def _text_or_hex(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return "0x" + data.hex()
    return text if text.isprintable() else "0x" + data.hex()
