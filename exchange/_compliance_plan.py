"""Figures for a time range from the compliance topic, topped up from the audit topic (pure).

``exchange report compliance`` answers for any range ``[since, until)`` (milliseconds). Per
audit partition it covers the range with windows: a whole UTC day by its day window when the
processor holds it (or when the by-hour breakdown is not asked for), every other hour by its
hour window (:func:`plan`). For a held window the published partial is taken, and the audit
records of that window beyond what the partial includes are folded on top; for a window not
held every audit record of it is folded (:func:`combine`). An hour the range only partly
covers (``since`` or ``until`` not on the hour) is never taken as held: its audit records are
folded, those recorded within the range only. :class:`PartitionPlan` says where the audit
partition must be read from, so a report over held windows reads only the tail the processor
has not published yet, and the result equals a direct count over the audit topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exchange._compliance import (
    EMPTY,
    AuditFacts,
    Figures,
    Granularity,
    WindowKey,
    fold_facts,
    merge,
    window_keys,
)
from exchange._compliance_topic import ComplianceState, Coverage

__all__ = ["CLOCK_SLACK_MS", "PartitionPlan", "Slot", "combine", "plan"]

HOUR = Granularity.HOUR.size_ms
DAY = Granularity.DAY.size_ms
#: How far a writer's clock may be behind the time an audit record carries.
CLOCK_SLACK_MS = 300_000


@dataclass(frozen=True, slots=True)
class Slot:
    """One window (any dimension) of the range, and whether the processor holds it.

    ``clip`` is the part ``[from, to)`` of an hour the range covers when it covers only part
    of it (such a slot is never held); None for a whole window.
    """

    granularity: Granularity
    start_ms: int
    held: bool
    clip: tuple[int, int] | None = None

    def takes(self, at_ms: int) -> bool:
        """Whether a record recorded at ``at_ms`` (inside this window) is in the range."""
        return self.clip is None or self.clip[0] <= at_ms < self.clip[1]


@dataclass(slots=True)
class PartitionPlan:
    """How to get one audit partition's figures for the range.

    ``read_from_offset`` is where to start reading the audit partition, or None to start at
    the first record written at or after ``read_from_time_ms`` (windows not held need every
    record of the range).
    """

    partition: int
    coverage: Coverage | None
    slots: list[Slot]
    read_from_offset: int | None
    read_from_time_ms: int
    _by_hour: dict[int, Slot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for slot in self.slots:
            for hour in range(slot.start_ms, slot.start_ms + slot.granularity.size_ms, HOUR):
                self._by_hour[hour] = slot

    def slot_at(self, at_ms: int) -> Slot | None:
        """The slot holding ``at_ms``, None outside the range."""
        return self._by_hour.get(at_ms - at_ms % HOUR)


def align(since_ms: int, until_ms: int) -> tuple[int, int]:
    """The range widened to whole hours (the hour windows it touches)."""
    return since_ms - since_ms % HOUR, until_ms + (-until_ms) % HOUR


def _slots(
    since: int, until: int, coverage: Coverage | None, by_hour: bool, held_from: int | None
) -> list[Slot]:
    def held(granularity: Granularity, start: int) -> bool:
        since_ms = None if coverage is None else coverage.since_ms.get(granularity)
        recent = held_from is None or start >= held_from
        return since_ms is not None and start >= since_ms and recent

    slots: list[Slot] = []
    at, end = align(since, until)
    while at < end:
        whole_day = at % DAY == 0 and since <= at and at + DAY <= until
        if whole_day and not by_hour and (held(Granularity.DAY, at) or coverage is None):
            slots.append(Slot(Granularity.DAY, at, held(Granularity.DAY, at)))
            at += DAY
        elif since <= at and at + HOUR <= until:
            slots.append(Slot(Granularity.HOUR, at, held(Granularity.HOUR, at)))
            at += HOUR
        else:
            clip = (max(at, since), min(at + HOUR, until))
            slots.append(Slot(Granularity.HOUR, at, held=False, clip=clip))
            at += HOUR
    return slots


def plan(
    state: ComplianceState,
    partitions: Iterable[int],
    since_ms: int,
    until_ms: int,
    *,
    by_hour: bool = False,
    clock_slack_ms: int = CLOCK_SLACK_MS,
    held_from_ms: int | None = None,
) -> list[PartitionPlan]:
    """A plan per audit partition for the range ``[since_ms, until_ms)``.

    ``clock_slack_ms`` allows for audit records whose Kafka timestamp is a little before the
    time they carry (writers' clocks differ). Windows starting before ``held_from_ms`` are
    never taken as held (the compliance topic's retention may have deleted their partials).
    """
    since = since_ms - since_ms % HOUR
    plans = []
    for partition in sorted(partitions):
        coverage = state.coverage.get(partition)
        slots = _slots(since_ms, until_ms, coverage, by_hour, held_from_ms)
        all_held = coverage is not None and all(slot.held for slot in slots)
        read_from = coverage.through_offset + 1 if all_held and coverage is not None else None
        plans.append(PartitionPlan(partition, coverage, slots, read_from, since - clock_slack_ms))
    return plans


def combine(
    state: ComplianceState,
    plans: Iterable[PartitionPlan],
    audit: Iterable[tuple[int, int, AuditFacts]],
) -> dict[WindowKey, Figures]:
    """Figures per window of the plans: held partials plus the audit records they lack.

    ``audit`` yields ``(partition, offset, facts)`` read as the plans say.
    """
    by_partition = {p.partition: p for p in plans}
    out: dict[WindowKey, Figures] = {}
    for (window, partition), partial in state.partials.items():
        part = by_partition.get(partition)
        slot = None if part is None else part.slot_at(window.start_ms)
        if slot is not None and slot.held and _same_window(slot, window):
            out[window] = merge(out.get(window, EMPTY), partial.figures)
    for partition, offset, facts in audit:
        part = by_partition.get(partition)
        slot = None if part is None else part.slot_at(facts.at_ms)
        if part is None or slot is None or not slot.takes(facts.at_ms):
            continue
        for window in window_keys(facts, [slot.granularity]):
            if not slot.held or offset > _included_through(state, part, window):
                out[window] = fold_facts(out.get(window, EMPTY), facts)
    return out


def _same_window(slot: Slot, window: WindowKey) -> bool:
    return slot.granularity is window.granularity and slot.start_ms == window.start_ms


def _included_through(state: ComplianceState, part: PartitionPlan, window: WindowKey) -> int:
    """The highest audit offset of this partition already in the window's published figures."""
    assert part.coverage is not None  # a held slot implies coverage
    partial = state.partials.get((window, part.partition))
    through = part.coverage.through_offset
    return through if partial is None else max(through, partial.through_offset)
