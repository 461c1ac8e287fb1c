"""Pydantic models of the envelope records (``schemas/envelope/*.avsc``), for Python users.

Each model mirrors one Avro record field for field (a test holds them to the schemas):
``to_avro()`` gives the plain dict the codec writes, ``from_avro(d)`` validates the plain dict
the codec reads. Times are aware UTC datetimes cut to whole milliseconds, the precision of
``timestamp-millis``, so a model survives the round trip unchanged; ints are bounded to the
Avro ``int``/``long`` ranges so that every valid model can be encoded.

The models check types, not policy: a request whose deadline has passed is a valid
``InquiryRequest`` (the bus answers it with ``REJECTED``/``DEADLINE_PAST``).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from exchange._errors import SchemaMismatchError
from exchange._wire import (
    AUDIT_RECORD,
    DEAD_LETTER,
    HEADER_DLQ_COMPONENT,
    HEADER_DLQ_DEAD_LETTERED_AT,
    HEADER_DLQ_MESSAGE,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE_OFFSET,
    HEADER_DLQ_SOURCE_PARTITION,
    HEADER_DLQ_SOURCE_TIMESTAMP,
    HEADER_DLQ_SOURCE_TOPIC,
    INQUIRY_OUTCOME,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    RecordType,
    header_value,
    inquiry_headers,
)

__all__ = [
    "AgencyRef",
    "AnswerMode",
    "AuditEvent",
    "AuditRecord",
    "DeadLetter",
    "EnvelopeModel",
    "ErrorInfo",
    "InquiryOutcome",
    "InquiryRequest",
    "InquiryResponse",
    "OutcomeKind",
    "RejectReason",
    "ResponseStatus",
    "SubjectKind",
    "SubjectRef",
    "utc_millis",
]


# --- Enums: the symbols of the Avro enums, in schema order ---------------------------------


class SubjectKind(enum.StrEnum):
    """The kind of subject an inquiry is about (Avro default: OTHER)."""

    PERSON = "PERSON"
    COMPANY = "COMPANY"
    VEHICLE = "VEHICLE"
    ACCOUNT = "ACCOUNT"
    ADDRESS = "ADDRESS"
    OTHER = "OTHER"


class ResponseStatus(enum.StrEnum):
    """What the provider found (Avro default: ERROR)."""

    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    ERROR = "ERROR"


class AnswerMode(enum.StrEnum):
    """Whether a machine or a person produced the answer (Avro default: MANUAL)."""

    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class OutcomeKind(enum.StrEnum):
    """How an inquiry ended (Avro default: FAILED)."""

    ANSWERED = "ANSWERED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class RejectReason(enum.StrEnum):
    """Why the bus refused a request (Avro default: OTHER)."""

    UNKNOWN_SERVICE = "UNKNOWN_SERVICE"
    NOT_ALLOWED = "NOT_ALLOWED"
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    WRONG_REQUESTER = "WRONG_REQUESTER"
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    DEADLINE_PAST = "DEADLINE_PAST"
    DEADLINE_TOO_FAR = "DEADLINE_TOO_FAR"
    UNKNOWN_AGENCY = "UNKNOWN_AGENCY"
    MALFORMED = "MALFORMED"
    OTHER = "OTHER"
    BAD_SIGNATURE = "BAD_SIGNATURE"


class AuditEvent(enum.StrEnum):
    """What the bus recorded in the audit trail (Avro default: OTHER)."""

    SETTLED = "SETTLED"
    LATE_RESPONSE = "LATE_RESPONSE"
    DUPLICATE_RESPONSE = "DUPLICATE_RESPONSE"
    FOREIGN_RESPONSE = "FOREIGN_RESPONSE"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    OTHER = "OTHER"


# --- Field types ---------------------------------------------------------------------------


def utc_millis(value: datetime) -> datetime:
    """``value`` in UTC, cut to whole milliseconds (what ``timestamp-millis`` keeps)."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


#: An aware datetime, stored in UTC at millisecond precision.
Timestamp = Annotated[AwareDatetime, AfterValidator(utc_millis)]
Int = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Long = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgencyRef(_Record):
    """An agency on the bus, optionally narrowed to one of its subsystems."""

    agency: str
    subsystem: str | None = None


class SubjectRef(_Record):
    """What an inquiry is about, when it is an identifiable person, company or thing."""

    kind: SubjectKind
    id: str


class ErrorInfo(_Record):
    """Why a provider could not answer."""

    code: str
    message: str
    retriable: bool = False


class EnvelopeModel(_Record):
    """Base of the top-level envelope records: the Avro name and the dict conversions."""

    #: Full name of the Avro record this model mirrors.
    AVRO_NAME: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The plain dict the codec encodes (UUIDs, datetimes and enum members as they are)."""
        return self.model_dump()

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """Validate a decoded dict; :class:`SchemaMismatchError` if it does not fit."""
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise SchemaMismatchError(
                f"value does not fit {cls.__name__}: {exc.error_count()} problem(s): "
                f"{exc.errors(include_url=False, include_input=False)}"
            ) from exc


# --- Envelope records ---------------------------------------------------------------------


class InquiryRequest(EnvelopeModel):
    """One inquiry from a requester agency to a provider agency about one service."""

    AVRO_NAME: ClassVar[str] = INQUIRY_REQUEST

    inquiry_id: uuid.UUID
    requester: AgencyRef
    provider: AgencyRef
    service_code: str
    service_version: Int
    purpose: str
    case_reference: str | None = None
    end_user_id: str | None = None
    subject: SubjectRef | None = None
    created_at: Timestamp
    deadline: Timestamp
    trace_parent: str | None = None
    reply_to: str | None = None
    payload: bytes

    def headers(self) -> list[tuple[str, bytes]]:
        """The Kafka headers this request travels with."""
        return inquiry_headers(
            RecordType.REQUEST,
            self.inquiry_id,
            reply_to=self.reply_to,
            traceparent=self.trace_parent,
        )


class InquiryResponse(EnvelopeModel):
    """A provider's answer to one inquiry."""

    AVRO_NAME: ClassVar[str] = INQUIRY_RESPONSE

    inquiry_id: uuid.UUID
    responder: AgencyRef
    service_code: str
    service_version: Int
    status: ResponseStatus
    error: ErrorInfo | None = None
    answered_by: AnswerMode
    responded_at: Timestamp
    payload: bytes | None = None
    trace_parent: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """The Kafka headers this response travels with."""
        return inquiry_headers(RecordType.RESPONSE, self.inquiry_id, traceparent=self.trace_parent)


class InquiryOutcome(EnvelopeModel):
    """The one terminal outcome of an inquiry, delivered to the requester."""

    AVRO_NAME: ClassVar[str] = INQUIRY_OUTCOME

    inquiry_id: uuid.UUID
    requester: AgencyRef
    provider: AgencyRef
    service_code: str
    service_version: Int
    purpose: str
    case_reference: str | None = None
    created_at: Timestamp
    deadline: Timestamp
    reply_to: str | None = None
    kind: OutcomeKind
    status: ResponseStatus | None = None
    reject_reason: RejectReason | None = None
    error: ErrorInfo | None = None
    answered_by: AnswerMode | None = None
    settled_at: Timestamp
    payload: bytes | None = None
    detail: str | None = None

    def headers(self, *, traceparent: str | None = None) -> list[tuple[str, bytes]]:
        """The Kafka headers this outcome travels with (``exchange-reply-to`` from reply_to)."""
        return inquiry_headers(
            RecordType.OUTCOME, self.inquiry_id, reply_to=self.reply_to, traceparent=traceparent
        )


class AuditRecord(EnvelopeModel):
    """One entry of the audit trail: a terminal outcome or a late/duplicate/foreign record."""

    AVRO_NAME: ClassVar[str] = AUDIT_RECORD

    event: AuditEvent
    inquiry_id: uuid.UUID
    requester: AgencyRef | None = None
    provider: AgencyRef | None = None
    responder: AgencyRef | None = None
    service_code: str
    service_version: Int
    purpose: str | None = None
    case_reference: str | None = None
    end_user_id: str | None = None
    subject: SubjectRef | None = None
    kind: OutcomeKind | None = None
    status: ResponseStatus | None = None
    reject_reason: RejectReason | None = None
    error_code: str | None = None
    answered_by: AnswerMode | None = None
    created_at: Timestamp | None = None
    deadline: Timestamp | None = None
    responded_at: Timestamp | None = None
    recorded_at: Timestamp
    latency_ms: Long | None = None
    within_deadline: bool | None = None
    signature: str | None = None
    request_signature: str | None = None
    prev_hash: bytes | None = None
    hash: bytes | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """The Kafka headers this audit record travels with."""
        return inquiry_headers(RecordType.AUDIT, self.inquiry_id)


class DeadLetter(EnvelopeModel):
    """Why and where from a record was dead-lettered; travels as ``exchange-dlq-*`` headers."""

    AVRO_NAME: ClassVar[str] = DEAD_LETTER

    reason: str
    message: str
    source_topic: str
    source_partition: Int
    source_offset: Long
    source_timestamp: Timestamp | None = None
    original_key: bytes | None = None
    dead_lettered_at: Timestamp
    component: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """The ``exchange-dlq-*`` headers (the key is the record's own key, not a header)."""
        headers = [
            (HEADER_DLQ_REASON, self.reason.encode("utf-8")),
            (HEADER_DLQ_MESSAGE, self.message.encode("utf-8")),
            (HEADER_DLQ_SOURCE_TOPIC, self.source_topic.encode("utf-8")),
            (HEADER_DLQ_SOURCE_PARTITION, str(self.source_partition).encode("ascii")),
            (HEADER_DLQ_SOURCE_OFFSET, str(self.source_offset).encode("ascii")),
            (HEADER_DLQ_DEAD_LETTERED_AT, _millis_text(self.dead_lettered_at)),
        ]
        if self.source_timestamp is not None:
            headers.append((HEADER_DLQ_SOURCE_TIMESTAMP, _millis_text(self.source_timestamp)))
        if self.component is not None:
            headers.append((HEADER_DLQ_COMPONENT, self.component.encode("utf-8")))
        return headers

    @classmethod
    def from_headers(
        cls, headers: Iterable[tuple[str, bytes]], *, key: bytes | None = None
    ) -> Self:
        """Read the metadata back from a dead-lettered record's headers and key."""
        headers = list(headers)

        def text(name: str) -> str | None:
            raw = header_value(headers, name)
            return None if raw is None else raw.decode("utf-8", errors="replace")

        return cls.from_avro(
            {
                "reason": text(HEADER_DLQ_REASON),
                "message": text(HEADER_DLQ_MESSAGE),
                "source_topic": text(HEADER_DLQ_SOURCE_TOPIC),
                "source_partition": text(HEADER_DLQ_SOURCE_PARTITION),
                "source_offset": text(HEADER_DLQ_SOURCE_OFFSET),
                "source_timestamp": _from_millis_text(text(HEADER_DLQ_SOURCE_TIMESTAMP)),
                "original_key": key,
                "dead_lettered_at": _from_millis_text(text(HEADER_DLQ_DEAD_LETTERED_AT)),
                "component": text(HEADER_DLQ_COMPONENT),
            }
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis_text(value: datetime) -> bytes:
    """Milliseconds since the Unix epoch as ASCII decimal (exact, no float on the way)."""
    delta = value - _EPOCH
    millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return str(millis).encode("ascii")


def _from_millis_text(text: str | None) -> datetime | str | None:
    if text is None:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=int(text))
    except (ValueError, OverflowError):
        return text  # missing or not a number: validation reports it
