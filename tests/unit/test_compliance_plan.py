"""The processor's step and the report's plan: published partials + audit tail = direct count."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange._compliance import (
    EMPTY,
    AuditFacts,
    Figures,
    Granularity,
    WindowKey,
    facts_from_record,
    fold_all,
    merge,
)
from exchange._compliance_plan import PartitionPlan, combine, plan
from exchange._compliance_report import report_rows
from exchange._compliance_samples import sample_audit_record
from exchange._compliance_topic import ComplianceState, Coverage, WindowPartial
from exchange._evaluation import PartitionCoverage, WindowValue, step

T0 = 1_714_521_600_000  # 2024-05-01T00:00:00Z, a day boundary
HOUR, DAY = 3_600_000, 86_400_000
LONG = {Granularity.HOUR: 1000 * DAY, Granularity.DAY: 1000 * DAY}


@dataclass
class Processor:
    """The faust agent's bookkeeping, over plain dicts instead of faust tables."""

    expires: dict[Granularity, int] = field(default_factory=lambda: dict(LONG))
    tables: dict[tuple[WindowKey, int], WindowValue] = field(default_factory=dict)
    coverage: dict[int, PartitionCoverage] = field(default_factory=dict)
    through: dict[int, int] = field(default_factory=dict)

    def feed(
        self, partition: int, offset: int, facts: AuditFacts, now_ms: int, log_time_ms: int = 0
    ) -> None:
        result = step(
            facts,
            offset,
            log_time_ms=log_time_ms,
            now_ms=now_ms,
            clock_slack_ms=0,
            expires_ms=self.expires,
            coverage=self.coverage.get(partition),
            lookup=lambda key: self.tables.get((key, partition)),
        )
        for key, value in result.writes:
            self.tables[(key, partition)] = value
        if result.coverage is not None:
            self.coverage[partition] = result.coverage
        self.through[partition] = offset

    def published(self) -> ComplianceState:
        state = ComplianceState()
        for (key, partition), value in self.tables.items():
            state.partials[(key, partition)] = WindowPartial(
                key, partition, value.through_offset, value.figures
            )
        for partition, cov in self.coverage.items():
            state.coverage[partition] = Coverage(partition, self.through[partition], cov.since_ms)
        return state


def report(
    state: ComplianceState, log: dict[int, list[AuditFacts]], since: int, until: int, **kw: Any
) -> dict[WindowKey, Figures]:
    """What the report command computes, reading the audit 'topic' as the plans say."""
    plans = plan(state, log, since, until, **kw)

    def audit(p: PartitionPlan) -> list[tuple[int, int, AuditFacts]]:
        start = 0 if p.read_from_offset is None else p.read_from_offset
        return [(p.partition, o, f) for o, f in enumerate(log[p.partition]) if o >= start]

    return combine(state, plans, [rec for p in plans for rec in audit(p)])


def totals(figures: dict[WindowKey, Figures], kind: str) -> dict[Any, Figures]:
    return {row.dimension: row.figures for row in report_rows(figures, kind=kind)}


def direct(log: dict[int, list[AuditFacts]], since: int, until: int) -> dict[WindowKey, Figures]:
    return fold_facts_all([f for facts in log.values() for f in facts if since <= f.at_ms < until])


def fold_facts_all(facts: list[AuditFacts]) -> dict[WindowKey, Figures]:
    from exchange._compliance import fold_facts, window_keys

    out: dict[WindowKey, Figures] = {}
    for f in facts:
        for key in window_keys(f, [Granularity.HOUR]):
            out[key] = fold_facts(out.get(key, EMPTY), f)
    return out


records = st.builds(
    lambda at, kind, event, prov, req: facts_from_record(
        sample_audit_record(event=event, kind=kind, recorded_at_ms=at, provider=prov, requester=req)
    ),
    st.integers(T0, T0 + 3 * DAY - 1),
    st.sampled_from(["ANSWERED", "FAILED", "TIMED_OUT", "REJECTED"]),
    st.sampled_from(["SETTLED"] * 5 + ["LATE_RESPONSE"]),
    st.sampled_from(["NOCR", "TAX"]),
    st.sampled_from(["TAX", "POLICE"]),
)
logs = st.dictionaries(st.integers(0, 2), st.lists(records, max_size=25), max_size=3)
ranges = st.tuples(st.integers(0, 72), st.integers(0, 72)).map(
    lambda ab: (T0 + min(ab) * HOUR, T0 + max(ab) * HOUR)
)


def assert_report_equals_direct(
    state: ComplianceState, log: dict[int, list[AuditFacts]], rng: tuple[int, int], **kw: Any
) -> None:
    got = report(state, log, *rng, **kw)
    want = direct(log, *rng)
    for kind in ("provider", "requester"):
        assert totals(got, kind) == totals(want, kind)


@settings(max_examples=100)
@given(logs, ranges, st.randoms(), st.booleans())
def test_report_equals_direct_count_at_any_point_of_processing(
    log: dict[int, list[AuditFacts]], rng: tuple[int, int], rnd: random.Random, by_hour: bool
) -> None:
    """Whatever prefix of each partition the processor published, the report's figures equal
    a direct count over the audit records of the range."""
    proc = Processor()
    for partition, facts in log.items():
        start = rnd.randint(0, len(facts))  # the processor may have started late
        stop = rnd.randint(start, len(facts))
        for offset in range(start, stop):
            written = max(f.at_ms for f in facts[: offset + 1])  # a record is written after
            proc.feed(partition, offset, facts[offset], now_ms=T0, log_time_ms=written)
    assert_report_equals_direct(proc.published(), log, rng, by_hour=by_hour)


@settings(max_examples=100)
@given(logs, ranges, st.randoms())
def test_report_is_exact_when_a_flush_was_cut_short(
    log: dict[int, list[AuditFacts]], rng: tuple[int, int], rnd: random.Random
) -> None:
    """Partials published after the last coverage record (a flush read half-way) neither go
    missing nor count twice."""
    proc = Processor()
    for partition, facts in log.items():
        for offset in range(len(facts) // 2):
            proc.feed(partition, offset, facts[offset], now_ms=T0)
    state = proc.published()
    for partition, facts in log.items():
        for offset in range(len(facts) // 2, len(facts)):
            proc.feed(partition, offset, facts[offset], now_ms=T0)
    for key, partial in proc.published().partials.items():
        if rnd.random() < 0.5:
            state.partials[key] = partial
    assert_report_equals_direct(state, log, rng)


any_ranges = st.tuples(st.integers(T0, T0 + 3 * DAY), st.integers(T0, T0 + 3 * DAY)).map(
    lambda ab: (min(ab), max(ab))
)


@settings(max_examples=100)
@given(logs, any_ranges, st.randoms(), st.booleans())
def test_a_range_off_the_hour_counts_exactly_the_records_inside_it(
    log: dict[int, list[AuditFacts]], rng: tuple[int, int], rnd: random.Random, by_hour: bool
) -> None:
    """A range that starts or ends inside an hour counts only the records recorded within it
    (its partial hours are folded from the audit records, never taken from a partial)."""
    proc = Processor()
    for partition, facts in log.items():
        for offset in range(rnd.randint(0, len(facts))):
            proc.feed(partition, offset, facts[offset], now_ms=T0)
    assert_report_equals_direct(proc.published(), log, rng, by_hour=by_hour)


def test_partial_hours_are_clipped_and_never_held() -> None:
    """The slots of 10:20-12:40 are 10:20-11:00 and 12:00-12:40 (clipped) around 11:00-12:00."""
    proc = Processor()
    proc.feed(0, 0, facts_from_record(sample_audit_record(recorded_at_ms=T0)), now_ms=T0)
    (only,) = plan(proc.published(), [0], T0 + 10 * HOUR + 20 * 60_000, T0 + 12 * HOUR + 2_400_000)
    assert [(s.start_ms - T0, s.held, s.clip is not None) for s in only.slots] == [
        (10 * HOUR, False, True),
        (11 * HOUR, True, False),
        (12 * HOUR, False, True),
    ]
    assert only.slots[0].clip == (T0 + 10 * HOUR + 1_200_000, T0 + 11 * HOUR)


@settings(max_examples=50)
@given(logs, ranges, st.integers(T0 - DAY, T0 + 4 * DAY))
def test_windows_before_the_retention_horizon_come_from_the_audit_topic(
    log: dict[int, list[AuditFacts]], rng: tuple[int, int], held_from: int
) -> None:
    """With the compliance topic's retention, windows that may be gone from it are never taken
    as held, and the report still equals the direct count."""
    proc = Processor()
    for partition, facts in log.items():
        for offset, f in enumerate(facts):
            proc.feed(partition, offset, f, now_ms=T0)
    state = proc.published()
    for plan_ in plan(state, log, *rng, held_from_ms=held_from):
        assert all(not slot.held for slot in plan_.slots if slot.start_ms < held_from)
    # The partials retention would have deleted by now: gone, as the report must not need them.
    for key in [k for k in state.partials if k[0].start_ms < held_from]:
        del state.partials[key]
    assert_report_equals_direct(state, log, rng, held_from_ms=held_from)


@given(logs, st.randoms())
def test_redelivered_records_are_not_counted_twice(
    log: dict[int, list[AuditFacts]], rnd: random.Random
) -> None:
    """Records processed again after a crash (offsets not committed) leave the tables as
    they were."""
    proc = Processor()
    for partition, facts in log.items():
        for offset, f in enumerate(facts):
            proc.feed(partition, offset, f, now_ms=T0)
    before = dict(proc.tables)
    for partition, facts in log.items():
        for offset in range(rnd.randint(0, len(facts)), len(facts)):
            proc.feed(partition, offset, facts[offset], now_ms=T0)
    assert proc.tables == before


@given(logs, ranges, st.integers(0, 4 * DAY))
def test_records_for_expired_windows_are_left_to_the_audit_fallback(
    log: dict[int, list[AuditFacts]], rng: tuple[int, int], age: int
) -> None:
    """Records arriving after their window expired are not folded, and the report still
    equals the direct count (it reads the audit topic for windows no longer held)."""
    proc = Processor(expires={Granularity.HOUR: 2 * HOUR, Granularity.DAY: DAY})
    for partition, facts in log.items():
        for offset, f in enumerate(facts):
            proc.feed(partition, offset, f, now_ms=T0 + age)
    assert_report_equals_direct(proc.published(), log, rng)


def test_a_record_for_an_expired_window_moves_coverage_past_it() -> None:
    """An expired record is not folded; its partition no longer claims to hold that window."""
    proc = Processor(expires={Granularity.HOUR: HOUR, Granularity.DAY: 10 * DAY})
    facts = facts_from_record(sample_audit_record(recorded_at_ms=T0 + 10))
    proc.feed(0, 0, facts, now_ms=T0 + 5 * HOUR)
    assert {k.granularity for k, _ in proc.tables} == {Granularity.DAY}
    assert proc.coverage[0].since_ms == {Granularity.HOUR: T0 + HOUR, Granularity.DAY: 0}


def test_processor_starting_mid_log_holds_windows_only_after_its_first() -> None:
    """A partition first read at an offset above zero is held from the next window on."""
    proc = Processor()
    facts = facts_from_record(sample_audit_record(recorded_at_ms=T0 + 5 * HOUR + 10))
    proc.feed(1, 7, facts, now_ms=T0, log_time_ms=T0 + 5 * HOUR + 20)
    assert proc.coverage[1].since_ms == {Granularity.HOUR: T0 + 6 * HOUR, Granularity.DAY: T0 + DAY}


def test_report_over_held_windows_reads_only_the_tail() -> None:
    """When every window of the range is held, the audit partition is read from just past
    the published offset."""
    proc = Processor()
    facts = facts_from_record(sample_audit_record(recorded_at_ms=T0 + 10))
    for offset in range(3):
        proc.feed(0, offset, facts, now_ms=T0)
    (only,) = plan(proc.published(), [0], T0, T0 + DAY)
    assert only.read_from_offset == 3
    assert [s.granularity for s in only.slots] == [Granularity.DAY]


def test_merge_of_partials_over_partitions_is_the_window_figure() -> None:
    """The published partials of one window, merged, are that window's figures."""
    proc = Processor()
    record = sample_audit_record(recorded_at_ms=T0 + 10)
    for partition in range(3):
        proc.feed(partition, 0, facts_from_record(record), now_ms=T0)
    merged: dict[WindowKey, Figures] = {}
    for (key, _), partial in proc.published().partials.items():
        merged[key] = merge(merged.get(key, EMPTY), partial.figures)
    assert merged == fold_all([record] * 3)
