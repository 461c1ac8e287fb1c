"""Report rows, their JSON/CSV forms, time arguments, compliance-topic records, the publisher."""

from __future__ import annotations

import csv
import io

import pytest

from agents.evaluation._publisher import Publisher
from exchange._compliance import EMPTY, Dimension, Figures, Granularity, WindowKey, fold, fold_all
from exchange._compliance_report import parse_when, report_rows, rows_to_csv, rows_to_json
from exchange._compliance_samples import sample_audit_record
from exchange._compliance_topic import (
    ComplianceState,
    Coverage,
    WindowPartial,
    decode_record,
    encode_coverage,
    encode_partial,
)
from exchange._evaluation import PartitionCoverage, WindowValue

T0 = 1_714_521_600_000  # 2024-05-01T00:00:00Z
HOUR = 3_600_000
NOCR = Dimension.provider("NOCR", "nocr.person.verify.v1")


def test_row_columns_are_shares_of_what_the_provider_received() -> None:
    """In-time % is over inquiries received (rejected ones excluded); automatic % over answers."""
    records = [
        sample_audit_record(recorded_at_ms=T0, answered_by="AUTOMATIC"),
        sample_audit_record(recorded_at_ms=T0, answered_by="MANUAL", deadline_in_ms=1),
        sample_audit_record(recorded_at_ms=T0, kind="TIMED_OUT"),
        sample_audit_record(recorded_at_ms=T0, kind="REJECTED"),
    ]
    (row,) = report_rows(fold_all(records, [Granularity.HOUR]))
    summary = row.summary()
    assert (summary["received"], summary["answered_in_time_pct"]) == (3, 33.33)
    assert (summary["timed_out"], summary["rejected"], summary["automatic_pct"]) == (1, 1, 50.0)
    assert summary["p95_answer_seconds"] == 0.5


def test_rows_break_down_by_day_or_stay_whole() -> None:
    """``by="day"`` gives a row per day; ``total`` merges the range into one row."""
    records = [sample_audit_record(recorded_at_ms=T0 + d * 86_400_000) for d in range(3)]
    hourly = fold_all(records, [Granularity.HOUR])
    assert [r.start_ms for r in report_rows(hourly, by="day")] == [
        T0,
        T0 + 86_400_000,
        T0 + 2 * 86_400_000,
    ]
    (total,) = report_rows(hourly)
    assert total.figures.inquiries == 3


def test_rows_filter_by_kind_and_agency() -> None:
    """Requester rows and one agency's rows are picked out of the same windows."""
    records = [
        sample_audit_record(recorded_at_ms=T0, provider="NOCR", requester="TAX"),
        sample_audit_record(recorded_at_ms=T0, provider="COMPANIES", requester="POLICE"),
    ]
    hourly = fold_all(records, [Granularity.HOUR])
    assert [r.dimension.agency for r in report_rows(hourly, kind="requester")] == [
        "POLICE",
        "TAX",
    ]
    assert [r.dimension.agency for r in report_rows(hourly, agency="NOCR")] == ["NOCR"]


def test_json_and_csv_carry_every_raw_count() -> None:
    """The JSON rows hold the figures; the CSV holds the columns and the raw counts."""
    rows = report_rows(fold_all([sample_audit_record(recorded_at_ms=T0)], [Granularity.DAY]))
    document = rows_to_json(rows, since_ms=T0, until_ms=T0 + HOUR, by="total")
    assert document["since"] == "2024-05-01T00:00:00Z"
    assert Figures.from_json(document["rows"][0]["figures"]) == rows[0].figures
    (line,) = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert (line["agency"], line["n_inquiries"], line["n_answered"]) == ("NOCR", "1", "1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", T0),
        ("36h", T0 - 36 * HOUR),
        ("2w", T0 - 14 * 86_400_000),
        ("2024-04-30", T0 - 86_400_000),
        ("2024-05-01T02:00", T0 + 2 * HOUR),
        ("2024-05-01T04:30+02:00", T0 + 2 * HOUR + HOUR // 2),
    ],
)
def test_time_arguments(text: str, expected: int) -> None:
    """Report bounds: ISO dates and times (UTC unless stated), now, or a span before now."""
    assert parse_when(text, now_ms=T0) == expected


def test_bad_time_argument_says_what_is_accepted() -> None:
    """A bound that is neither a time nor a span is refused with the accepted forms."""
    with pytest.raises(ValueError, match="span like 7d"):
        parse_when("yesterday", now_ms=T0)


def test_compliance_records_round_trip_and_junk_is_counted() -> None:
    """Partials and coverage decode to what was encoded; unreadable values are counted."""
    window = WindowKey(Granularity.HOUR, T0, NOCR)
    partial = WindowPartial(window, 2, 41, fold(EMPTY, sample_audit_record(recorded_at_ms=T0)))
    coverage = Coverage(2, 57, {Granularity.HOUR: T0, Granularity.DAY: 0})
    assert decode_record(encode_partial(partial, now_ms=T0)) == partial
    assert decode_record(encode_coverage(coverage, now_ms=T0)) == coverage
    state = ComplianceState()
    for value in (encode_partial(partial, now_ms=T0), b"{not json", b'{"type": "future"}', None):
        state.apply(value)
    assert (state.partials, state.unreadable) == ({(window, 2): partial}, 1)


def test_publisher_sends_partials_before_coverage_and_only_once() -> None:
    """A flush sends the dirty partials, then the coverage of partitions that moved; a second
    flush with nothing new sends nothing."""
    publisher = Publisher()
    window = WindowKey(Granularity.HOUR, T0, NOCR)
    publisher.wrote(window, 0, WindowValue(7, EMPTY))
    publisher.processed(0, 7, PartitionCoverage({Granularity.HOUR: 0, Granularity.DAY: 0}))
    partials, coverages = publisher.snapshot(T0)
    assert [k for k, _ in partials] == [
        b"hour|2024-05-01T00:00:00Z|provider|NOCR|nocr.person.verify.v1|p0"
    ]
    assert [k for k, _ in coverages] == [b"coverage|p0"]
    assert publisher.snapshot(T0) == ([], [])


def test_publisher_forgets_revoked_partitions() -> None:
    """After a revocation, nothing of those partitions is published by this worker."""
    publisher = Publisher()
    publisher.wrote(WindowKey(Granularity.DAY, T0, NOCR), 1, WindowValue(3, EMPTY))
    publisher.processed(1, 3, PartitionCoverage({Granularity.DAY: 0}))
    publisher.forget([1])
    assert publisher.snapshot(T0) == ([], [])
