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
The parts: writing (:mod:`exchange._dlq_letter`), listing (:mod:`exchange._dlq_listing`),
replaying (:mod:`exchange._dlq_replay`), previewing (:mod:`exchange._dlq_preview`), all pure,
re-exported here; the I/O (reading the DLQ, producing) is in :mod:`exchange._dlq_io`.
"""

from __future__ import annotations

from exchange._dlq_letter import (
    HEADER_DLQ_REPLAY_OF,
    HEADER_DLQ_REPLAYED_TO,
    HEADER_REPLAYED_FROM,
    MAX_MESSAGE,
    PROCESSING_ERROR,
    ConsumedRecord,
    DeadLetterRecord,
    dead_letter_record,
)
from exchange._dlq_listing import DeadLetterEntry, DlqListing, parse_entry_id
from exchange._dlq_preview import preview
from exchange._dlq_replay import Replay, choose_for_replay, replay_marker, replay_record

__all__ = [
    "HEADER_DLQ_REPLAYED_TO",
    "HEADER_DLQ_REPLAY_OF",
    "HEADER_REPLAYED_FROM",
    "MAX_MESSAGE",
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
