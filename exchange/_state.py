"""The state the stream workers keep per inquiry, as compact immutable values.

An inquiry is either **pending** (an :class:`InquiryRecord`: everything needed later to build its
outcome and audit record) or **settled** (a :class:`Settled` mark: just enough to recognise a
late or duplicate record and audit it). Settling swaps the full record for the mark, because
settled inquiries are remembered for a retention period and far outnumber pending ones at
a steady load (one hour of traffic against one deadline's worth).

Memory: both are slotted dataclasses (no per-instance ``__dict__``), and the strings drawn
from a small vocabulary (agency, subsystem, service code, purpose, subject kind, reply-to)
are interned so a hundred thousand inquiries share one copy of each.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SETTLED_PHASES", "InquiryRecord", "InquiryState", "Phase", "Settled"]


class Phase(StrEnum):
    """Where an inquiry is in its life; every phase but PENDING is terminal.

    The terminal names match the outcome kinds of the envelope (``InquiryOutcome.kind``).
    """

    PENDING = "PENDING"
    ANSWERED = "ANSWERED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"


SETTLED_PHASES = frozenset(Phase) - {Phase.PENDING}


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


@dataclass(frozen=True, slots=True)
class InquiryRecord:
    """One inquiry as the bus received it, without its payload.

    Times are milliseconds since the epoch. ``received_at_ms`` is when the bus read the request
    (the moment it was routed, or rejected). ``request_signature`` is the requester's
    ``exchange-signature`` header in compact form (:mod:`exchange._audit_signature`: 73 bytes,
    not the request), kept so the audit record of the outcome can name who signed the question.
    """

    inquiry_id: str
    requester_agency: str
    requester_subsystem: str | None
    provider_agency: str
    provider_subsystem: str | None
    service_code: str
    service_version: int
    purpose: str
    created_at_ms: int
    deadline_ms: int
    received_at_ms: int
    case_reference: str | None = None
    end_user_id: str | None = None
    subject_kind: str | None = None
    subject_id: str | None = None
    reply_to: str | None = None
    trace_parent: str | None = None
    request_signature: bytes | None = None

    def __post_init__(self) -> None:
        # Interning here, not at each call site, so every way of building one (decoded
        # envelope, restored changelog, tests) shares the vocabulary strings.
        for name in _INTERNED:
            object.__setattr__(self, name, _intern(getattr(self, name)))

    @property
    def phase(self) -> Phase:
        """Always PENDING: an :class:`InquiryRecord` in the table is waiting for its answer."""
        return Phase.PENDING

    def settle(self, phase: Phase, at_ms: int) -> Settled:
        """The mark that replaces this inquiry once it reached *phase* at *at_ms*."""
        return Settled(
            inquiry_id=self.inquiry_id,
            phase=phase,
            requester_agency=self.requester_agency,
            provider_agency=self.provider_agency,
            service_code=self.service_code,
            service_version=self.service_version,
            settled_at_ms=at_ms,
        )


_INTERNED = (
    "requester_agency",
    "requester_subsystem",
    "provider_agency",
    "provider_subsystem",
    "service_code",
    "purpose",
    "subject_kind",
    "reply_to",
)


@dataclass(frozen=True, slots=True)
class Settled:
    """What the bus remembers of a settled inquiry until its retention ends."""

    inquiry_id: str
    phase: Phase
    requester_agency: str
    provider_agency: str
    service_code: str
    service_version: int
    settled_at_ms: int

    def __post_init__(self) -> None:
        if self.phase == Phase.PENDING:
            raise ValueError("a settled inquiry cannot be PENDING")
        for name in ("requester_agency", "provider_agency", "service_code"):
            object.__setattr__(self, name, sys.intern(getattr(self, name)))


#: One entry of the state table.
InquiryState = InquiryRecord | Settled
