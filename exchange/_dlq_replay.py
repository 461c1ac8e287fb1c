"""Replaying dead letters (pure): which to replay, and the records a replay produces.

A replay writes the dead letter's key and value back to its source topic with its original
headers and ``exchange-replayed-from``, and a replay marker to the dead letter's own DLQ
partition (see :mod:`exchange._dlq`); :mod:`exchange._dlq_io` produces both in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exchange._dlq_letter import (
    HEADER_DLQ_REPLAY_OF,
    HEADER_DLQ_REPLAYED_TO,
    HEADER_REPLAYED_FROM,
    Headers,
    without_dlq_headers,
)
from exchange._dlq_listing import DeadLetterEntry
from exchange._topology import Topics

__all__ = ["Replay", "choose_for_replay", "replay_marker", "replay_record"]


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
    headers = without_dlq_headers(entry.headers)
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
