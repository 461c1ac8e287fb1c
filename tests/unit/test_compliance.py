"""Compliance figures: folding audit records, merging partials, percentiles, window keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange._compliance import (
    ANSWER_BOUNDS_MS,
    EMPTY,
    Dimension,
    Figures,
    Granularity,
    WindowKey,
    facts_from_record,
    fold,
    fold_all,
    merge,
    percentile,
)
from exchange._compliance_samples import sample_audit_record

T0 = 1_714_557_600_000  # 2024-05-01T10:00:00Z, an hour boundary


def audit(*, at_ms: int = T0 + 1_000, answer_ms: int = 400, **kw: Any) -> dict[str, Any]:
    """A decoded audit record recorded at ``at_ms`` whose inquiry took ``answer_ms``."""
    return sample_audit_record(recorded_at_ms=at_ms, latency_ms=answer_ms, **kw)


def test_answered_in_time_is_counted_with_its_answer_time() -> None:
    """An answered inquiry counts as received, answered in time, automatic, and timed."""
    figures = fold(EMPTY, audit(answer_ms=400))
    assert (figures.inquiries, figures.received, figures.answered) == (1, 1, 1)
    assert (figures.answered_in_time, figures.automatic, figures.manual) == (1, 1, 0)
    assert figures.answer_ms_sum == 400
    assert figures.answer_ms_buckets[ANSWER_BOUNDS_MS.index(500)] == 1


def test_answer_after_deadline_is_not_in_time() -> None:
    """An answer settled after its deadline is answered but not in time."""
    figures = fold(EMPTY, audit(answer_ms=5_000, deadline_in_ms=1_000, answered_by="MANUAL"))
    assert (figures.answered, figures.answered_in_time, figures.manual) == (1, 0, 1)


@pytest.mark.parametrize("kind", ["FAILED", "TIMED_OUT", "REJECTED"])
def test_other_outcomes_count_under_their_kind_and_are_not_timed(kind: str) -> None:
    """FAILED, TIMED_OUT and REJECTED count as inquiries of that kind, with no answer time."""
    figures = fold(EMPTY, audit(kind=kind, answered_by=None))
    assert figures.inquiries == 1
    assert getattr(figures, kind.lower()) == 1
    assert (figures.answered, sum(figures.answer_ms_buckets)) == (0, 0)
    assert figures.received == (0 if kind == "REJECTED" else 1)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("LATE_RESPONSE", "late_responses"),
        ("DUPLICATE_RESPONSE", "duplicate_responses"),
        ("FOREIGN_RESPONSE", "foreign_responses"),
        ("DUPLICATE_REQUEST", "duplicate_requests"),
        ("OTHER", "other_events"),
    ],
)
def test_anomalies_are_counted_apart_from_inquiries(event: str, field: str) -> None:
    """Late, duplicate, foreign and unknown records never count as inquiries."""
    figures = fold(EMPTY, audit(event=event))
    assert figures.inquiries == 0
    assert getattr(figures, field) == 1


def test_unknown_event_kinds_count_as_other() -> None:
    """An audit event this version does not know is counted as an other event, not lost."""
    assert fold(EMPTY, audit(event="SOMETHING_NEW")) == Figures(other_events=1)


def test_response_anomalies_count_against_the_responder() -> None:
    """A foreign response is held against the agency that sent it, not the inquiry's provider."""
    keys = fold_all([audit(event="FOREIGN_RESPONSE", responder="POLICE")], [Granularity.HOUR])
    agencies = {key.dimension.agency for key in keys if key.dimension.kind == "provider"}
    assert agencies == {"POLICE"}


def test_record_counts_in_hour_and_day_per_provider_service_and_requester() -> None:
    """One record lands in four windows: hour and day, provider+service and requester."""
    keys = set(fold_all([audit(at_ms=T0 + 3_599_999)]))
    day = T0 - T0 % 86_400_000
    provider = Dimension.provider("NOCR", "nocr.person.verify.v1")
    requester = Dimension.requester("TAX")
    assert keys == {
        WindowKey(Granularity.HOUR, T0, provider),
        WindowKey(Granularity.HOUR, T0, requester),
        WindowKey(Granularity.DAY, day, provider),
        WindowKey(Granularity.DAY, day, requester),
    }


def test_window_key_text_round_trips() -> None:
    """The compliance topic's key text parses back into the same window key."""
    key = WindowKey(Granularity.HOUR, T0, Dimension.provider("BANK-MELLI", "bank.x.v2"))
    assert key.to_text() == "hour|2024-05-01T10:00:00Z|provider|BANK-MELLI|bank.x.v2"
    assert WindowKey.from_text(key.to_text()) == key


def test_figures_json_round_trips() -> None:
    """Figures survive their JSON form unchanged."""
    figures = fold(fold(EMPTY, audit()), audit(kind="FAILED"))
    assert Figures.from_json(figures.to_json()) == figures


def test_percentile_reports_bucket_upper_bound() -> None:
    """p95 is the upper bound of the bucket where 95 % of answers are reached."""
    records = [audit(answer_ms=90)] * 95 + [audit(answer_ms=20_000)] * 5
    figures = fold_all(records, [Granularity.DAY])
    one = next(iter(figures.values()))
    assert percentile(one, 0.95) == 0.1
    assert percentile(one, 0.96) == 30.0
    assert percentile(EMPTY, 0.95) is None


def test_percentile_of_overflow_reports_last_bound() -> None:
    """Answers beyond a week report the last bound, read as "at least"."""
    figures = fold(EMPTY, audit(answer_ms=10 * 86_400_000, deadline_in_ms=20 * 86_400_000))
    assert percentile(figures, 0.5) == ANSWER_BOUNDS_MS[-1] / 1000


def test_facts_accept_int_milliseconds() -> None:
    """Records whose times are plain ints (ms) give the same facts as datetimes."""
    record = audit()
    as_ints = {
        k: (round(v.timestamp() * 1000) if isinstance(v, datetime) else v)
        for k, v in record.items()
    }
    assert facts_from_record(as_ints) == facts_from_record(record)


# --- properties ---------------------------------------------------------------------------------

records = st.builds(
    audit,
    event=st.sampled_from(["SETTLED"] * 4 + ["LATE_RESPONSE", "DUPLICATE_REQUEST"]),
    kind=st.sampled_from(["ANSWERED", "FAILED", "TIMED_OUT", "REJECTED"]),
    at_ms=st.integers(T0, T0 + 3 * 86_400_000),
    answer_ms=st.integers(0, 10**9),
    deadline_in_ms=st.integers(0, 10**9),
    provider=st.sampled_from(["NOCR", "TAX"]),
    requester=st.sampled_from(["TAX", "POLICE"]),
    answered_by=st.sampled_from(["AUTOMATIC", "MANUAL", None]),
)


@given(st.lists(records, max_size=30), st.randoms())
def test_folding_in_any_order_gives_the_same_figures(batch: list[dict[str, Any]], rnd: Any) -> None:
    """The figures do not depend on the order audit records arrive in."""
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    assert fold_all(shuffled) == fold_all(batch)


@given(st.lists(records, max_size=30), st.lists(st.integers(0, 3), max_size=30))
def test_merging_partitions_gives_the_figures_of_the_whole(
    batch: list[dict[str, Any]], assignment: list[int]
) -> None:
    """Folding each partition apart and merging equals folding everything at once."""
    parts: list[list[dict[str, Any]]] = [[], [], [], []]
    for index, record in enumerate(batch):
        parts[assignment[index] if index < len(assignment) else 0].append(record)
    merged: dict[WindowKey, Figures] = {}
    for part in parts:
        for key, figures in fold_all(part).items():
            merged[key] = merge(merged.get(key, EMPTY), figures)
    assert merged == fold_all(batch)


@given(st.lists(records, max_size=30))
def test_hours_merge_into_their_day(batch: list[dict[str, Any]]) -> None:
    """The hourly figures of a day merge into that day's figures."""
    folded = fold_all(batch)
    from_hours: dict[WindowKey, Figures] = {}
    for key, figures in folded.items():
        if key.granularity is Granularity.HOUR:
            day = WindowKey(Granularity.DAY, Granularity.DAY.start_of(key.start_ms), key.dimension)
            from_hours[day] = merge(from_hours.get(day, EMPTY), figures)
    days = {k: v for k, v in folded.items() if k.granularity is Granularity.DAY}
    assert from_hours == days


@given(st.lists(records, min_size=1, max_size=30), st.floats(0.01, 1), st.floats(0.01, 1))
def test_percentile_grows_with_q(batch: list[dict[str, Any]], q1: float, q2: float) -> None:
    """A higher quantile is never below a lower one."""
    for figures in fold_all(batch).values():
        low, high = percentile(figures, min(q1, q2)), percentile(figures, max(q1, q2))
        if low is not None and high is not None:
            assert low <= high
