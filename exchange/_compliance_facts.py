"""The few facts of an ``AuditRecord`` that compliance figures need (pure).

The adapter between the envelope schema (``schemas/envelope/AuditRecord.avsc``) and the
figures: everything else in the compliance code works on :class:`AuditFacts`, so a schema
change touches only this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AuditFacts", "facts_from_record"]

#: Events caused by a response: counted against the agency that sent it.
_RESPONSE_EVENTS = frozenset({"LATE_RESPONSE", "DUPLICATE_RESPONSE", "FOREIGN_RESPONSE"})


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """What one audit record says, for the figures.

    ``event`` is the audit event (``SETTLED``, ``LATE_RESPONSE`` …); ``outcome`` the terminal
    outcome kind of a SETTLED record. ``at_ms`` (the record's ``recorded_at``: when the bus
    settled the inquiry or noticed the anomaly) places it in its windows. ``provider`` is the
    agency the figures hold to account: the inquiry's provider, or for a response-caused
    anomaly the agency that sent the response. ``answer_ms`` is the end-to-end time of an
    answered inquiry (``latency_ms``: created to settled).
    """

    event: str
    at_ms: int
    provider: str | None
    service: str
    requester: str | None
    outcome: str | None = None
    within_deadline: bool = False
    answered_by: str | None = None
    answer_ms: int | None = None


def _ms(value: Any) -> int:
    """Avro ``timestamp-millis`` as decoded (an aware datetime) or already an int."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def _agency(ref: Any) -> str | None:
    return None if ref is None else str(ref["agency"])


def facts_from_record(record: Mapping[str, Any]) -> AuditFacts:
    """Extract the facts from a decoded ``AuditRecord`` (a dict, as the codec returns it)."""
    event = str(record["event"])
    outcome = record.get("kind")
    answered = event == "SETTLED" and outcome == "ANSWERED"
    provider = _agency(record.get("provider"))
    if event in _RESPONSE_EVENTS:
        provider = _agency(record.get("responder")) or provider
    latency = record.get("latency_ms")
    return AuditFacts(
        event=event,
        at_ms=_ms(record["recorded_at"]),
        provider=provider,
        service=f"{record['service_code']}.v{record['service_version']}",
        requester=_agency(record.get("requester")),
        outcome=None if outcome is None else str(outcome),
        within_deadline=answered and bool(record.get("within_deadline")),
        answered_by=None if record.get("answered_by") is None else str(record["answered_by"]),
        answer_ms=int(latency) if answered and latency is not None else None,
    )
