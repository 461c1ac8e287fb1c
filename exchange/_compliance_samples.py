"""Sample decoded ``AuditRecord`` values, for tests and demos of the compliance figures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = ["sample_audit_record"]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def sample_audit_record(
    *,
    event: str = "SETTLED",
    kind: str | None = "ANSWERED",
    recorded_at_ms: int = 1_714_557_601_000,
    latency_ms: int = 400,
    deadline_in_ms: int = 30_000,
    provider: str = "NOCR",
    service: str = "nocr.person.verify",
    requester: str = "TAX",
    responder: str | None = None,
    answered_by: str | None = "AUTOMATIC",
    inquiry_id: str | None = None,
) -> dict[str, Any]:
    """One audit record as the codec decodes it (times as aware datetimes).

    ``kind`` is kept only for SETTLED events; ``within_deadline`` follows from the latency
    and the deadline, as the stream workers compute it.
    """
    created = recorded_at_ms - latency_ms
    settled = event == "SETTLED"
    answered = settled and kind == "ANSWERED"
    responds = answered or (settled and kind == "FAILED") or event.endswith("_RESPONSE")
    return {
        "event": event,
        "inquiry_id": inquiry_id or str(uuid.uuid4()),
        "requester": {"agency": requester, "subsystem": None},
        "provider": {"agency": provider, "subsystem": None},
        "responder": {"agency": responder or provider, "subsystem": None} if responds else None,
        "service_code": service,
        "service_version": 1,
        "purpose": "tax-assessment",
        "case_reference": None,
        "end_user_id": None,
        "subject": None,
        "kind": kind if settled else None,
        "status": "FOUND" if answered else None,
        "reject_reason": "NOT_ALLOWED" if settled and kind == "REJECTED" else None,
        "error_code": "backend-down" if settled and kind == "FAILED" else None,
        "answered_by": answered_by if responds else None,
        "created_at": _dt(created),
        "deadline": _dt(created + deadline_in_ms),
        "responded_at": _dt(recorded_at_ms - 1) if responds else None,
        "recorded_at": _dt(recorded_at_ms),
        "latency_ms": latency_ms,
        "within_deadline": (answered and recorded_at_ms <= created + deadline_in_ms)
        if settled
        else None,
        "signature": None,
        "request_signature": None,
        "prev_hash": None,
        "hash": None,
    }
