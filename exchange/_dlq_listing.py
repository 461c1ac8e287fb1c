"""Reading the DLQ (pure): dead letters as listed, filtered and marked replayed.

:class:`DlqListing` folds the records read from ``<prefix>.dlq`` (by :mod:`exchange._dlq_io`)
into :class:`DeadLetterEntry` values; replay markers in the DLQ mark the entries they name.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from exchange._codec import Codec
from exchange._dlq_letter import HEADER_DLQ_REPLAY_OF, ConsumedRecord
from exchange._dlq_preview import preview, text_or_hex
from exchange._errors import CodecError
from exchange._models import DeadLetter
from exchange._wire import HEADER_DLQ_REASON, header_value

__all__ = ["DeadLetterEntry", "DlqListing", "parse_entry_id"]


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
            "key": text_or_hex(self.key),
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
