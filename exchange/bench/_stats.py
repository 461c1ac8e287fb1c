"""Latency summaries over exact samples: sorted arrays, nearest-rank percentiles.

A benchmark phase holds at most a few tens of thousands of samples, so keeping every sample and
sorting once is exact and cheap; a bucketed (HDR-style) histogram would only trade accuracy for
memory we do not need to save.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

#: The percentiles every summary reports.
PERCENTILES: tuple[float, ...] = (50.0, 95.0, 99.0)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted values (``nan`` when there are none).

    Nearest rank (the smallest value with at least ``pct`` % of samples at or below it) always
    returns an observed sample, so p99 of a run is a latency some inquiry really had.
    """
    if not 0.0 < pct <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    if not sorted_values:
        return math.nan
    rank = math.ceil(pct / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency of one phase, in milliseconds; ``count`` completed, ``incomplete`` never did."""

    count: int
    incomplete: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def to_json(self) -> dict[str, float | int | None]:
        """Plain JSON values; ``nan`` (no samples) becomes ``null``."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def summarize(latencies_s: Iterable[float], *, incomplete: int = 0) -> LatencySummary:
    """Summarise latencies given in seconds as milliseconds, rounded to microseconds."""
    values = sorted(latencies_s)
    p50, p95, p99 = (percentile(values, p) for p in PERCENTILES)
    top = values[-1] if values else math.nan
    mean = math.fsum(values) / len(values) if values else math.nan
    return LatencySummary(
        count=len(values),
        incomplete=incomplete,
        p50=_ms(p50),
        p95=_ms(p95),
        p99=_ms(p99),
        max=_ms(top),
        mean=_ms(mean),
    )


def _ms(seconds: float) -> float:
    return seconds if math.isnan(seconds) else round(seconds * 1000.0, 3)
