"""Latency summaries: nearest-rank percentiles over exact samples."""

from __future__ import annotations

import math

import pytest

from exchange.bench._stats import percentile, summarize


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 is the maximum: always an observed sample."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 1) == 7.0


def test_percentile_of_nothing_is_nan() -> None:
    """An empty phase has no percentile rather than a made-up zero."""
    assert math.isnan(percentile([], 99))


@pytest.mark.parametrize("pct", [0.0, -1.0, 100.5])
def test_percentile_rejects_out_of_range(pct: float) -> None:
    """Percentiles outside (0, 100] are a caller's mistake."""
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], pct)


def test_summarize_reports_milliseconds() -> None:
    """Seconds in, milliseconds out, with count and incomplete carried through."""
    summary = summarize([0.003, 0.001, 0.002, 0.010], incomplete=2)
    assert summary.count == 4
    assert summary.incomplete == 2
    assert summary.p50 == 2.0
    assert summary.p99 == 10.0
    assert summary.max == 10.0
    assert summary.mean == 4.0


def test_empty_summary_serialises_as_nulls() -> None:
    """No samples: the JSON holds nulls (valid JSON), not NaN."""
    data = summarize([], incomplete=5).to_json()
    assert data["count"] == 0
    assert data["incomplete"] == 5
    assert data["p99"] is None
    assert data["max"] is None
