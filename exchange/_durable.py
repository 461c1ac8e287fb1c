"""Durable outcomes: what a client reading its replies in a consumer group may commit (pure).

A requester that must not lose an outcome across a restart (a connector writing outcomes back
to a legacy database) reads ``<prefix>.replies.<AGENCY>`` in a consumer group of its own, with
a stable reply-to, and commits an outcome's offset only after its caller **acknowledged** it
(wrote it where it belongs). :class:`ReplyLedger` keeps the books, with no Kafka and no clock:

- every record read is *seen*; a record for this reader is *held* until acknowledged;
- the offset to commit per partition is the lowest held offset, or the next one to read when
  nothing is held (gap-free: a restart re-reads every unacknowledged outcome);
- an outcome nobody waits for (its inquiry was sent before a restart, or the caller stopped
  waiting) is *parked*: the next send of the same inquiry id **claims** it instead of waiting
  (the sender re-offers undelivered events after a restart; the bus drops the resend as a
  duplicate and would not answer it again). A parked outcome not claimed within the claim
  window is released (acknowledged): its caller had it already, or gave up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange._outcome import Outcome

__all__ = ["ReplyLedger"]


@dataclass(slots=True)
class _Parked:
    outcome: Outcome
    since: float


@dataclass
class ReplyLedger:
    """Held offsets per partition, parked outcomes by inquiry id (see the module docstring)."""

    claim_window: float
    _next: dict[int, int] = field(default_factory=dict)
    _held: dict[int, dict[int, str]] = field(default_factory=dict)
    _where: dict[str, tuple[int, int]] = field(default_factory=dict)
    _parked: dict[str, _Parked] = field(default_factory=dict)
    _committed: dict[int, int] = field(default_factory=dict)

    def start(self, partition: int, offset: int) -> None:
        """The reader starts ``partition`` at ``offset`` (committed at once when new, so a
        restart never skips what arrived after this start)."""
        self._next[partition] = offset

    def seen(self, partition: int, offset: int) -> None:
        """A record was read (anyone's): the position moves past it."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def hold(self, partition: int, offset: int, inquiry_id: str) -> None:
        """A record for this reader: not committed past until :meth:`acknowledge`."""
        self.seen(partition, offset)
        previous = self._where.get(inquiry_id)
        if previous is not None:  # the same outcome read again: the newer copy is kept
            self._release(inquiry_id)
        self._held.setdefault(partition, {})[offset] = inquiry_id
        self._where[inquiry_id] = (partition, offset)

    def acknowledge(self, inquiry_id: str) -> None:
        """The caller stored the outcome: its offset may be committed past."""
        self._parked.pop(inquiry_id, None)
        self._release(inquiry_id)

    def _release(self, inquiry_id: str) -> None:
        where = self._where.pop(inquiry_id, None)
        if where is not None:
            partition, offset = where
            self._held[partition].pop(offset, None)

    def park(self, inquiry_id: str, outcome: Outcome, now: float) -> None:
        """Keep an outcome nobody waits for, until claimed or the window passes."""
        self._parked[inquiry_id] = _Parked(outcome, now)

    def claim(self, inquiry_id: str) -> Outcome | None:
        """The parked outcome of ``inquiry_id`` (removed from the park, still held)."""
        parked = self._parked.pop(inquiry_id, None)
        return None if parked is None else parked.outcome

    def expire(self, now: float) -> list[str]:
        """Release the parked outcomes older than the claim window; their inquiry ids."""
        old = [key for key, p in self._parked.items() if now - p.since >= self.claim_window]
        for key in old:
            self.acknowledge(key)
        return old

    def to_commit(self) -> dict[int, int]:
        """Partition → offset to commit, only where it moved since the last call."""
        changed: dict[int, int] = {}
        for partition, position in self._next.items():
            held = self._held.get(partition)
            offset = min(held) if held else position
            if self._committed.get(partition) != offset:
                changed[partition] = offset
        self._committed.update(changed)
        return changed

    def commit_failed(self, offsets: dict[int, int]) -> None:
        """Those offsets were not committed: offer them again at the next :meth:`to_commit`."""
        for partition in offsets:
            self._committed.pop(partition, None)

    @property
    def held(self) -> int:
        """Outcomes read and not acknowledged yet."""
        return len(self._where)

    @property
    def parked(self) -> int:
        """Outcomes read that nobody has claimed yet."""
        return len(self._parked)
