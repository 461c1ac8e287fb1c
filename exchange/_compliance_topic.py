"""Records of the compacted ``<prefix>.compliance`` topic, and the state they add up to (pure).

The evaluation processor publishes two kinds of record, both UTF-8 JSON (aggregates for
dashboards and spreadsheets, read by tools in any language; no inquiry data in them):

- a **window partial**: the figures of one window of one dimension, folded from one partition
  of the audit topic. Key ``<window key>|p<partition>`` (see ``WindowKey.to_text``); value
  ``{"type": "window", "granularity", "start", "end", "dimension": {"kind", "agency",
  "service"}, "partition", "through_offset", "figures": {...}, "published_at"}``.
  ``through_offset`` is the highest audit offset folded into it. The figures of a window are
  the :func:`~exchange._compliance.merge` of its partials over every audit partition.
- a **coverage** record per audit partition. Key ``coverage|p<partition>``; value
  ``{"type": "coverage", "partition", "through_offset", "since": {"hour": ms, "day": ms},
  "published_at"}``. Windows starting at or after ``since[granularity]`` are *held*: every
  audit record of that partition with an offset up to ``through_offset`` is in their
  published partials. Older windows are not held (the processor started later, or skipped
  records that arrived after the window had expired); readers fold the audit topic for them.

The processor writes a flush's partials before its coverage records, on a single-partition
topic, so any prefix of the topic is consistent in that sense.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exchange._compliance import Dimension, Figures, Granularity, WindowKey

__all__ = [
    "ComplianceState",
    "Coverage",
    "WindowPartial",
    "coverage_key",
    "decode_record",
    "encode_coverage",
    "encode_partial",
    "partial_key",
]


@dataclass(frozen=True, slots=True)
class WindowPartial:
    """The figures of one window, folded from one audit partition up to ``through_offset``."""

    window: WindowKey
    partition: int
    through_offset: int
    figures: Figures


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the processor holds for one audit partition (see the module docstring)."""

    partition: int
    through_offset: int
    since_ms: dict[Granularity, int] = field(default_factory=dict)

    def holds(self, window: WindowKey) -> bool:
        """Whether the published partials of ``window`` are complete up to the offset."""
        since = self.since_ms.get(window.granularity)
        return since is not None and window.start_ms >= since


def partial_key(window: WindowKey, partition: int) -> bytes:
    """The record key of a window partial."""
    return f"{window.to_text()}|p{partition}".encode()


def coverage_key(partition: int) -> bytes:
    """The record key of a partition's coverage."""
    return f"coverage|p{partition}".encode()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def encode_partial(partial: WindowPartial, *, now_ms: int) -> bytes:
    """The JSON value of a window partial."""
    window = partial.window
    dim = window.dimension
    return _dumps(
        {
            "type": "window",
            "granularity": str(window.granularity),
            "start": _iso(window.start_ms),
            "end": _iso(window.end_ms),
            "start_ms": window.start_ms,
            "dimension": {"kind": dim.kind, "agency": dim.agency, "service": dim.service},
            "partition": partial.partition,
            "through_offset": partial.through_offset,
            "figures": partial.figures.to_json(),
            "published_at": _iso(now_ms),
        }
    )


def encode_coverage(coverage: Coverage, *, now_ms: int) -> bytes:
    """The JSON value of a coverage record."""
    return _dumps(
        {
            "type": "coverage",
            "partition": coverage.partition,
            "through_offset": coverage.through_offset,
            "since": {str(g): ms for g, ms in coverage.since_ms.items()},
            "published_at": _iso(now_ms),
        }
    )


def decode_record(value: bytes) -> WindowPartial | Coverage | None:
    """Parse a compliance record's value; None for a kind this version does not know.

    Raises ``ValueError`` (or ``KeyError``) when the value is not a compliance record.
    """
    data = json.loads(value)
    if data.get("type") == "window":
        dim = data["dimension"]
        window = WindowKey(
            Granularity(data["granularity"]),
            int(data["start_ms"]),
            Dimension(dim["kind"], dim["agency"], dim.get("service", "")),
        )
        return WindowPartial(
            window, int(data["partition"]), int(data["through_offset"]),
            Figures.from_json(data["figures"]),
        )  # fmt: skip
    if data.get("type") == "coverage":
        since = {Granularity(g): int(ms) for g, ms in data["since"].items()}
        return Coverage(int(data["partition"]), int(data["through_offset"]), since)
    return None


@dataclass(slots=True)
class ComplianceState:
    """The latest partial per (window, partition) and coverage per partition, as read."""

    partials: dict[tuple[WindowKey, int], WindowPartial] = field(default_factory=dict)
    coverage: dict[int, Coverage] = field(default_factory=dict)
    unreadable: int = 0

    def apply(self, value: bytes | None) -> None:
        """Take one record (in topic order); unreadable values are counted and skipped."""
        if value is None:
            return
        try:
            record = decode_record(value)
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        if isinstance(record, WindowPartial):
            self.partials[(record.window, record.partition)] = record
        elif isinstance(record, Coverage):
            self.coverage[record.partition] = record
