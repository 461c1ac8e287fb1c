"""Compliance figures: fold audit records into per-window, per-dimension counts (pure).

The supervising council judges each agency by what the audit trail says: how many inquiries
were settled, how many answered within their deadline, timed out, failed or rejected, how many
answered automatically, and how long answers took. This module turns decoded ``AuditRecord``
values into those figures with no I/O, so the evaluation processor (faust, ``agents/``) and
``exchange report compliance`` (reading the audit topic directly) compute them with the same
code and their results can be compared exactly.

- A :class:`WindowKey` names one tumbling window (``hour`` or ``day``, UTC-aligned, by the
  audit record's ``at`` time) of one :class:`Dimension`: a provider agency and service, or a
  requester agency.
- :class:`Figures` are counts plus a fixed-bucket histogram of answer times. Figures form a
  commutative monoid under :func:`merge` (identity :data:`EMPTY`), so partials computed per
  partition or per hour merge into the figures of a day, and folding records in any order
  gives the same result. Percentiles come from the histogram (:func:`percentile`), which is
  why they merge, at the price of bucket resolution.
- Only ``SETTLED`` audit events count as inquiries; late, duplicate and foreign records (and
  events this version does not know) are counted separately as anomalies of the dimensions
  they name.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from exchange._compliance_facts import AuditFacts, facts_from_record

__all__ = [
    "ANSWER_BOUNDS_MS",
    "EMPTY",
    "AuditFacts",
    "Dimension",
    "Figures",
    "Granularity",
    "WindowKey",
    "facts_from_record",
    "fold",
    "fold_all",
    "fold_facts",
    "merge",
    "percentile",
    "window_keys",
]

#: Upper bounds (inclusive, milliseconds) of the answer-time buckets; one more bucket holds
#: everything longer. From a cached automatic answer (0.1 s) to a manual desk (a week).
ANSWER_BOUNDS_MS: tuple[int, ...] = (
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
    3_600_000, 14_400_000, 86_400_000, 604_800_000,
)  # fmt: skip


class Granularity(StrEnum):
    """Window sizes: tumbling, aligned to UTC hours and days."""

    HOUR = "hour"
    DAY = "day"

    @property
    def size_ms(self) -> int:
        """The window length in milliseconds."""
        return 3_600_000 if self is Granularity.HOUR else 86_400_000

    def start_of(self, at_ms: int) -> int:
        """Start (ms since the epoch) of the window holding ``at_ms``."""
        return at_ms - at_ms % self.size_ms


@dataclass(frozen=True, slots=True, order=True)
class Dimension:
    """Who figures are about: ``provider`` (agency and versioned service) or ``requester``."""

    kind: str
    agency: str
    service: str = ""

    @classmethod
    def provider(cls, agency: str, service: str) -> Dimension:
        """A provider agency answering one versioned service (``nocr.person.verify.v1``)."""
        return cls("provider", agency, service)

    @classmethod
    def requester(cls, agency: str) -> Dimension:
        """A requester agency, over every service it asked."""
        return cls("requester", agency)


@dataclass(frozen=True, slots=True, order=True)
class WindowKey:
    """One window of one dimension."""

    granularity: Granularity
    start_ms: int
    dimension: Dimension

    @property
    def end_ms(self) -> int:
        """Exclusive end of the window."""
        return self.start_ms + self.granularity.size_ms

    def to_text(self) -> str:
        """Stable text form, ``hour|2024-05-01T10:00:00Z|provider|NOCR|nocr.person.verify.v1``.

        Used as the record key on the compliance topic (agency and service codes never
        contain ``|``).
        """
        start = datetime.fromtimestamp(self.start_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        dim = self.dimension
        return f"{self.granularity}|{start}|{dim.kind}|{dim.agency}|{dim.service}"

    @classmethod
    def from_text(cls, text: str) -> WindowKey:
        """Inverse of :meth:`to_text`; ``ValueError`` when the text is not a window key."""
        granularity, start, kind, agency, service = text.split("|")
        start_dt = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if kind not in ("provider", "requester"):
            raise ValueError(f"unknown dimension kind {kind!r}")
        start_ms = int(start_dt.timestamp() * 1000)
        return cls(Granularity(granularity), start_ms, Dimension(kind, agency, service))


_EMPTY_BUCKETS = (0,) * (len(ANSWER_BOUNDS_MS) + 1)


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts for one window of one dimension; merge with :func:`merge`.

    ``inquiries`` counts settled inquiries of every outcome; ``answered_in_time`` those answered
    at or before their deadline. ``automatic``/``manual`` split the answered ones by how the
    provider answered. ``answer_ms_buckets`` holds one count per bound of
    :data:`ANSWER_BOUNDS_MS` plus one overflow bucket (answered inquiries only).
    """

    inquiries: int = 0
    answered: int = 0
    answered_in_time: int = 0
    failed: int = 0
    timed_out: int = 0
    rejected: int = 0
    automatic: int = 0
    manual: int = 0
    late_responses: int = 0
    duplicate_responses: int = 0
    foreign_responses: int = 0
    duplicate_requests: int = 0
    other_events: int = 0
    answer_ms_sum: int = 0
    answer_ms_buckets: tuple[int, ...] = _EMPTY_BUCKETS

    @property
    def received(self) -> int:
        """Inquiries that reached the provider: every settled one the bus did not reject."""
        return self.inquiries - self.rejected

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the histogram as a list)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["answer_ms_buckets"] = list(self.answer_ms_buckets)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figures:
        """Inverse of :meth:`to_json`; unknown keys are ignored, missing ones are zero."""
        names = {f.name for f in fields(cls)} - {"answer_ms_buckets"}
        counts = {name: int(data[name]) for name in names if name in data}
        buckets = tuple(int(n) for n in data.get("answer_ms_buckets", _EMPTY_BUCKETS))
        if len(buckets) != len(_EMPTY_BUCKETS):
            raise ValueError(f"expected {len(_EMPTY_BUCKETS)} answer-time buckets")
        return cls(**counts, answer_ms_buckets=buckets)


EMPTY = Figures()

_ANOMALY_FIELD = {
    "LATE_RESPONSE": "late_responses",
    "DUPLICATE_RESPONSE": "duplicate_responses",
    "FOREIGN_RESPONSE": "foreign_responses",
    "DUPLICATE_REQUEST": "duplicate_requests",
    "OTHER": "other_events",
}


def fold_facts(figures: Figures, facts: AuditFacts) -> Figures:
    """Add one audit record's facts to ``figures``."""
    if facts.event != "SETTLED":
        # An event a newer writer added (decoded as OTHER, or unknown here) is still counted.
        return _bump(figures, _ANOMALY_FIELD.get(facts.event, "other_events"))
    figures = _bump(figures, "inquiries")
    if facts.outcome == "ANSWERED":
        return _answered(figures, facts)
    if facts.outcome in ("FAILED", "TIMED_OUT", "REJECTED"):
        return _bump(figures, facts.outcome.lower())  # the field names match the kinds
    return figures


def _answered(figures: Figures, facts: AuditFacts) -> Figures:
    figures = _bump(figures, "answered")
    if facts.within_deadline:
        figures = _bump(figures, "answered_in_time")
    if facts.answered_by == "AUTOMATIC":
        figures = _bump(figures, "automatic")
    elif facts.answered_by == "MANUAL":
        figures = _bump(figures, "manual")
    if facts.answer_ms is None:
        return figures
    answer_ms = max(facts.answer_ms, 0)
    index = bisect.bisect_left(ANSWER_BOUNDS_MS, answer_ms)
    buckets = list(figures.answer_ms_buckets)
    buckets[index] += 1
    return replace(
        figures, answer_ms_sum=figures.answer_ms_sum + answer_ms, answer_ms_buckets=tuple(buckets)
    )


def _bump(figures: Figures, name: str) -> Figures:
    return replace(figures, **{name: getattr(figures, name) + 1})


def fold(figures: Figures, record: Mapping[str, Any]) -> Figures:
    """Add one decoded ``AuditRecord`` to ``figures``."""
    return fold_facts(figures, facts_from_record(record))


def merge(a: Figures, b: Figures) -> Figures:
    """The figures of both: counts and buckets added (commutative, associative)."""
    counts = {
        f.name: getattr(a, f.name) + getattr(b, f.name)
        for f in fields(Figures)
        if f.name != "answer_ms_buckets"
    }
    buckets = tuple(x + y for x, y in zip(a.answer_ms_buckets, b.answer_ms_buckets, strict=True))
    return Figures(**counts, answer_ms_buckets=buckets)


def percentile(figures: Figures, q: float) -> float | None:
    """Upper bound, in seconds, of the bucket holding the ``q`` quantile of answer times.

    None when no answer was timed. Answers beyond the last bound report that bound (a week):
    the figure then reads "at least".
    """
    if not 0 < q <= 1:
        raise ValueError("q must be in (0, 1]")
    total = sum(figures.answer_ms_buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(figures.answer_ms_buckets):
        seen += count
        if seen >= rank:
            return ANSWER_BOUNDS_MS[min(index, len(ANSWER_BOUNDS_MS) - 1)] / 1000
    return ANSWER_BOUNDS_MS[-1] / 1000  # unreachable: seen reaches total


def window_keys(
    facts: AuditFacts, granularities: Iterable[Granularity] = tuple(Granularity)
) -> list[WindowKey]:
    """Every window the record counts in: each granularity times each dimension it names."""
    dims = [
        Dimension.provider(facts.provider, facts.service) if facts.provider else None,
        Dimension.requester(facts.requester) if facts.requester else None,
    ]
    return [
        WindowKey(g, g.start_of(facts.at_ms), dim)
        for g in granularities
        for dim in dims
        if dim is not None
    ]


def fold_all(
    records: Iterable[Mapping[str, Any]],
    granularities: Iterable[Granularity] = tuple(Granularity),
) -> dict[WindowKey, Figures]:
    """Fold decoded audit records into figures per window: the direct count."""
    grans = tuple(granularities)
    out: dict[WindowKey, Figures] = {}
    for record in records:
        facts = facts_from_record(record)
        for key in window_keys(facts, grans):
            out[key] = fold_facts(out.get(key, EMPTY), facts)
    return out
