"""Rows of the compliance report, and their JSON and CSV forms (pure).

One row per dimension (provider agency and service, or requester agency) and, when a
breakdown is asked for, per day or hour: inquiries received, answered within deadline (%),
timed out, failed, rejected, automatic share (%) and the p95 answer time, with every raw
count kept in the JSON form so the council's spreadsheets can recompute any ratio.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from exchange._compliance import (
    EMPTY,
    Dimension,
    Figures,
    Granularity,
    WindowKey,
    merge,
    percentile,
)

__all__ = [
    "Breakdown",
    "ReportRow",
    "iso",
    "parse_when",
    "report_rows",
    "rows_to_csv",
    "rows_to_json",
]

Breakdown = Literal["total", "day", "hour"]


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def iso(ms: int) -> str:
    """UTC ISO-8601 text of a millisecond timestamp."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The figures of one dimension over the range, or over one day or hour of it."""

    dimension: Dimension
    start_ms: int | None
    figures: Figures

    @property
    def answered_in_time_pct(self) -> float | None:
        """Answered within deadline, as a share of the inquiries the provider received."""
        return _pct(self.figures.answered_in_time, self.figures.received)

    @property
    def automatic_pct(self) -> float | None:
        """Automatic answers as a share of answers whose mode is known."""
        return _pct(self.figures.automatic, self.figures.automatic + self.figures.manual)

    @property
    def p95_seconds(self) -> float | None:
        """The 95th percentile of answer times (bucket upper bound), in seconds."""
        return percentile(self.figures, 0.95)

    def summary(self) -> dict[str, Any]:
        """The printed columns."""
        dim = self.dimension
        return {
            "kind": dim.kind,
            "agency": dim.agency,
            "service": dim.service,
            "start": None if self.start_ms is None else iso(self.start_ms),
            "received": self.figures.received,
            "answered_in_time_pct": self.answered_in_time_pct,
            "timed_out": self.figures.timed_out,
            "failed": self.figures.failed,
            "rejected": self.figures.rejected,
            "automatic_pct": self.automatic_pct,
            "p95_answer_seconds": self.p95_seconds,
        }


def _bucket(window: WindowKey, by: Breakdown) -> int | None:
    if by == "total":
        return None
    granularity = Granularity.DAY if by == "day" else Granularity.HOUR
    return granularity.start_of(window.start_ms)


def report_rows(
    figures: Mapping[WindowKey, Figures],
    *,
    by: Breakdown = "total",
    kind: str = "provider",
    agency: str | None = None,
) -> list[ReportRow]:
    """Group window figures into report rows, sorted by agency, service and time.

    Every record must be in one window only: pass what ``exchange._compliance_plan.combine``
    returns (a day window of one partition may sit next to hour windows of another), or
    figures of one granularity (``fold_all(records, [Granularity.HOUR])``).
    """
    grouped: dict[tuple[Dimension, int | None], Figures] = {}
    for window, value in figures.items():
        dim = window.dimension
        if dim.kind != kind or (agency is not None and dim.agency != agency):
            continue
        key = (dim, _bucket(window, by))
        grouped[key] = merge(grouped.get(key, EMPTY), value)
    return [
        ReportRow(dim, start, value)
        for (dim, start), value in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    ]


def rows_to_json(
    rows: list[ReportRow], *, since_ms: int, until_ms: int, by: Breakdown
) -> dict[str, Any]:
    """The ``--json`` document: the range, and per row the columns plus every raw count."""
    return {
        "since": iso(since_ms),
        "until": iso(until_ms),
        "by": by,
        "rows": [{**row.summary(), "figures": row.figures.to_json()} for row in rows],
    }


def rows_to_csv(rows: list[ReportRow]) -> str:
    """The ``--csv`` text: the printed columns, then the raw counts (no histogram)."""
    out = io.StringIO()
    raw = [name for name in EMPTY.to_json() if name != "answer_ms_buckets"]
    columns = [*ReportRow(Dimension("", ""), None, EMPTY).summary(), *(f"n_{n}" for n in raw)]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        counts = row.figures.to_json()
        writer.writerow({**row.summary(), **{f"n_{n}": counts[n] for n in raw}})
    return out.getvalue()


_UNITS_MS = {"h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_when(text: str, *, now_ms: int) -> int:
    """A report bound in ms: ISO-8601 (``2024-05-01``, ``2024-05-01T10:00``; UTC unless it
    says otherwise), ``now``, or a span before now (``36h``, ``7d``, ``2w``)."""
    text = text.strip()
    if text == "now":
        return now_ms
    unit = _UNITS_MS.get(text[-1:])
    if unit is not None and text[:-1].isdigit():
        return now_ms - int(text[:-1]) * unit
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date, a time, 'now' or a span like 7d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
