"""The plain values going into the correlator and the effects coming out of it.

Inputs are what a worker observed (:class:`RequestAccepted`, :class:`RequestRejected`,
:class:`ResponseArrived`, :class:`Tick`, :class:`Restored`); outputs are what it must write,
all in the same Kafka transaction as the offsets of the records that caused them
(:class:`Route`, :class:`Settlement`, :class:`AuditEvent`, :class:`StateChange`). Enumerated
fields that come from the envelope (status, answer mode) are carried as the envelope's string
symbols, so ``StrEnum`` members of the envelope models fit as they are; the reject reason is
the envelope's :class:`~exchange._models.RejectReason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exchange._changelog import encode_state
from exchange._models import RejectReason
from exchange._state import InquiryRecord, InquiryState, Phase

__all__ = [
    "AuditEvent",
    "AuditKind",
    "Effect",
    "Event",
    "ProviderError",
    "RequestAccepted",
    "RequestRejected",
    "ResponseArrived",
    "Restored",
    "Route",
    "Settlement",
    "StateChange",
    "Tick",
]


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestAccepted:
    """Routing accepted this request; ``inquiry.received_at_ms`` is the time it was read."""

    inquiry: InquiryRecord


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """Routing refused this request, read from ``out.<source_agency>``.

    The outcome goes to *source_agency*, the authenticated writer, which differs from the
    envelope's requester exactly when the reason is ``WRONG_REQUESTER``.
    """

    inquiry: InquiryRecord
    source_agency: str
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class ProviderError:
    """The provider's account of why it could not answer (the envelope's ``ErrorInfo``)."""

    code: str
    message: str
    retriable: bool = False


@dataclass(frozen=True, slots=True)
class ResponseArrived:
    """A response read from ``out.<responder_agency>`` at ``now_ms``.

    ``responder_agency`` must be the agency of the topic, not the envelope's claim.
    ``invalid`` says why the response failed validation (payload not of the service's
    response schema, a FOUND without payload …), or is None for a valid one.
    """

    inquiry_id: str
    responder_agency: str
    service_code: str
    service_version: int
    status: str
    answered_by: str
    responded_at_ms: int
    now_ms: int
    payload: bytes | None = None
    error: ProviderError | None = None
    invalid: str | None = None
    responder_subsystem: str | None = None
    trace_parent: str | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Wall-clock time passed: time out what is due and forget what has expired."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Restored:
    """One changelog record replayed on assignment; ``state`` None is a tombstone."""

    inquiry_id: str
    state: InquiryState | None


Event = RequestAccepted | RequestRejected | ResponseArrived | Tick | Restored


# --- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Forward the request, as read, to ``in.<inquiry.provider_agency>``."""

    inquiry: InquiryRecord


@dataclass(frozen=True, slots=True)
class Settlement:
    """The one terminal outcome of an inquiry: write it as an ``InquiryOutcome`` to
    ``replies.<deliver_to>`` (and, through its SETTLED :class:`AuditEvent`, to ``audit``)."""

    inquiry: InquiryRecord
    kind: Phase
    settled_at_ms: int
    deliver_to: str
    status: str | None = None
    answered_by: str | None = None
    responded_at_ms: int | None = None
    error: ProviderError | None = None
    payload: bytes | None = None
    reject_reason: RejectReason | None = None
    detail: str | None = None


class AuditKind(StrEnum):
    """Why an audit record is written."""

    SETTLED = "SETTLED"
    LATE_RESPONSE = "LATE_RESPONSE"
    DUPLICATE_RESPONSE = "DUPLICATE_RESPONSE"
    FOREIGN_RESPONSE = "FOREIGN_RESPONSE"
    UNKNOWN_RESPONSE = "UNKNOWN_RESPONSE"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One record for ``audit``, with what the bus knew of the inquiry at that moment.

    ``state`` is the table entry (None when the inquiry is unknown); ``settlement`` is set for
    SETTLED; ``response`` for the response-caused kinds; ``request`` for DUPLICATE_REQUEST.
    """

    kind: AuditKind
    inquiry_id: str
    at_ms: int
    state: InquiryState | None = None
    settlement: Settlement | None = None
    response: ResponseArrived | None = None
    request: InquiryRecord | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StateChange:
    """Write the inquiry's new state (None: a tombstone) to the compacted changelog."""

    inquiry_id: str
    state: InquiryState | None

    def key(self) -> bytes:
        """The changelog record key: the inquiry id, UTF-8."""
        return self.inquiry_id.encode()

    def value(self) -> bytes | None:
        """The changelog record value, None for a tombstone."""
        return None if self.state is None else encode_state(self.state)


Effect = Route | Settlement | AuditEvent | StateChange
