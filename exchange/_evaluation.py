"""The evaluation processor's per-record step: audit facts in, table writes out (pure).

The faust processor in ``agents/evaluation`` keeps one windowed table per granularity, keyed
by dimension *and audit partition* (a faust table key must only ever be written from one
source partition, or its changelog partitions disagree after a rebalance), and one coverage
table keyed by audit partition. For each audit record it calls :func:`step` with what the
tables hold and writes back what the step returns. Three rules live here, not in the agent:

- **At-least-once made exact.** Each window value remembers the highest audit offset folded
  into it (``through_offset``); a record redelivered after a crash (its offset not committed,
  its table writes already in the changelog) is recognised and not counted twice.
- **Expiry.** A window is dropped from the live table ``expires`` after it closes (faust's
  table cleanup, on the wall clock). A record for an already expired window is not folded
  (that would restart the window from zero and publish a partial that overwrites the real
  one); instead the partition's coverage moves past that window, so reports fold the audit
  topic for it.
- **Coverage.** A partition whose first record processed is not offset 0 may have had
  earlier records (deleted by retention, or never read). They were written before that
  first record, so they were recorded before its Kafka timestamp (plus clock slack): the
  partition is held from the first window after that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange._compliance import (
    EMPTY,
    AuditFacts,
    Figures,
    Granularity,
    WindowKey,
    fold_facts,
    window_keys,
)

__all__ = ["PartitionCoverage", "Step", "WindowValue", "step"]


@dataclass(frozen=True, slots=True)
class WindowValue:
    """A live table value: the figures of one window partial and its highest folded offset."""

    through_offset: int
    figures: Figures

    def to_json(self) -> dict[str, Any]:
        """The table's (changelog) form."""
        return {"through_offset": self.through_offset, "figures": self.figures.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowValue:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["through_offset"]), Figures.from_json(data["figures"]))


@dataclass(frozen=True, slots=True)
class PartitionCoverage:
    """Per audit partition: from which window start on each granularity is held."""

    since_ms: dict[Granularity, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The table's (changelog) form."""
        return {"since": {str(g): ms for g, ms in self.since_ms.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartitionCoverage:
        """Inverse of :meth:`to_json`."""
        return cls({Granularity(g): int(ms) for g, ms in data["since"].items()})


@dataclass(frozen=True, slots=True)
class Step:
    """What one record changes: window values to write, and the coverage if it moved."""

    writes: list[tuple[WindowKey, WindowValue]]
    coverage: PartitionCoverage | None
    duplicate: bool = False
    too_late: tuple[Granularity, ...] = ()


def expired(window: WindowKey, now_ms: int, expires_ms: int) -> bool:
    """Whether faust's table cleanup drops (or has dropped) ``window`` at ``now_ms``.

    faust (``Table._del_old_keys``) drops a window once its end is at or before the start of
    the window holding ``now - expires``; windows are aligned, so this compares starts.
    """
    granularity = window.granularity
    return window.start_ms < granularity.start_of(now_ms - expires_ms)


def _first_coverage(offset: int, written_before_ms: int) -> PartitionCoverage:
    if offset == 0:
        return PartitionCoverage(dict.fromkeys(Granularity, 0))
    return PartitionCoverage({g: g.start_of(written_before_ms) + g.size_ms for g in Granularity})


def step(
    facts: AuditFacts,
    offset: int,
    *,
    log_time_ms: int,
    now_ms: int,
    expires_ms: Mapping[Granularity, int],
    coverage: PartitionCoverage | None,
    lookup: Callable[[WindowKey], WindowValue | None],
    clock_slack_ms: int = 300_000,
) -> Step:
    """Fold one audit record (at ``offset`` of its partition) into the live windows.

    ``log_time_ms`` is the record's Kafka timestamp (when it was written), ``now_ms`` the wall
    clock; ``coverage`` None means this is the first record of the partition processed.
    """
    first = (
        _first_coverage(offset, max(log_time_ms, facts.at_ms) + clock_slack_ms)
        if coverage is None
        else None
    )
    before = (first or coverage or PartitionCoverage()).since_ms
    since = dict(before)
    writes: list[tuple[WindowKey, WindowValue]] = []
    too_late: list[Granularity] = []
    duplicate = False
    for granularity in Granularity:
        keys = window_keys(facts, [granularity])
        if keys and expired(keys[0], now_ms, expires_ms[granularity]):
            too_late.append(granularity)
            since[granularity] = max(since.get(granularity, 0), keys[0].end_ms)
            continue
        for key in keys:
            current = lookup(key)
            if current is not None and offset <= current.through_offset:
                duplicate = True
                continue
            figures = EMPTY if current is None else current.figures
            writes.append((key, WindowValue(offset, fold_facts(figures, facts))))
    moved = PartitionCoverage(since) if since != before else None
    return Step(writes, moved or first, duplicate, tuple(too_late))
