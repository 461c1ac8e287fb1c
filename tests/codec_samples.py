"""Fixed sample records for the codec and model tests (the golden fixtures are made of them)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from exchange._codec import Codec
from exchange._models import (
    AgencyRef,
    AnswerMode,
    AuditEvent,
    AuditRecord,
    DeadLetter,
    EnvelopeModel,
    ErrorInfo,
    InquiryOutcome,
    InquiryRequest,
    InquiryResponse,
    OutcomeKind,
    ResponseStatus,
    SubjectKind,
    SubjectRef,
)
from exchange._schema_store import SchemaStore

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE_DIR = ROOT / "schemas" / "envelope"
GOLDEN_DIR = ROOT / "tests" / "golden"
EXAMPLE_PAYLOAD = "exchange.example.v1.PersonVerifyRequest"

INQUIRY_ID = uuid.UUID("3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17")
CREATED_AT = dt.datetime(2025, 3, 1, 9, 30, 0, 123000, tzinfo=dt.UTC)
DEADLINE = CREATED_AT + dt.timedelta(seconds=30)
RESPONDED_AT = CREATED_AT + dt.timedelta(milliseconds=840)
SETTLED_AT = CREATED_AT + dt.timedelta(milliseconds=910)
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TAX = AgencyRef(agency="TAX", subsystem="registration")
NOCR = AgencyRef(agency="NOCR")


def sample_store() -> SchemaStore:
    """The envelope schemas plus the example payload schema."""
    store = SchemaStore.from_directory(ENVELOPE_DIR)
    store.load_file(GOLDEN_DIR / "example-payload.avsc")
    return store


def example_payload(codec: Codec) -> bytes:
    """The example request payload, single-object encoded."""
    value = {"national_id": "0012345678", "birth_date": dt.date(1990, 5, 17), "last_name": "Rahimi"}
    return codec.encode(EXAMPLE_PAYLOAD, value)


def samples(codec: Codec) -> dict[str, EnvelopeModel]:
    """One filled-in record of every envelope type, keyed by golden file stem."""
    payload = example_payload(codec)
    request = InquiryRequest(
        inquiry_id=INQUIRY_ID,
        requester=TAX,
        provider=NOCR,
        service_code="nocr.person.verify",
        service_version=1,
        purpose="tax-registration",
        case_reference="TX-2025-000123",
        end_user_id="officer-4711",
        subject=SubjectRef(kind=SubjectKind.PERSON, id="0012345678"),
        created_at=CREATED_AT,
        deadline=DEADLINE,
        trace_parent=TRACE,
        reply_to="c0ffee",
        payload=payload,
    )
    response = InquiryResponse(
        inquiry_id=INQUIRY_ID,
        responder=NOCR,
        service_code="nocr.person.verify",
        service_version=1,
        status=ResponseStatus.ERROR,
        error=ErrorInfo(code="backend-unavailable", message="registry offline", retriable=True),
        answered_by=AnswerMode.AUTOMATIC,
        responded_at=RESPONDED_AT,
        payload=None,
        trace_parent=TRACE,
    )
    outcome = InquiryOutcome(
        inquiry_id=INQUIRY_ID,
        requester=TAX,
        provider=NOCR,
        service_code="nocr.person.verify",
        service_version=1,
        purpose="tax-registration",
        case_reference="TX-2025-000123",
        created_at=CREATED_AT,
        deadline=DEADLINE,
        reply_to="c0ffee",
        kind=OutcomeKind.ANSWERED,
        status=ResponseStatus.FOUND,
        answered_by=AnswerMode.AUTOMATIC,
        settled_at=SETTLED_AT,
        payload=payload,
    )
    audit = AuditRecord(
        event=AuditEvent.SETTLED,
        inquiry_id=INQUIRY_ID,
        requester=TAX,
        provider=NOCR,
        responder=NOCR,
        service_code="nocr.person.verify",
        service_version=1,
        purpose="tax-registration",
        case_reference="TX-2025-000123",
        end_user_id="officer-4711",
        subject=SubjectRef(kind=SubjectKind.PERSON, id="0012345678"),
        kind=OutcomeKind.ANSWERED,
        status=ResponseStatus.FOUND,
        answered_by=AnswerMode.AUTOMATIC,
        created_at=CREATED_AT,
        deadline=DEADLINE,
        responded_at=RESPONDED_AT,
        recorded_at=SETTLED_AT,
        latency_ms=910,
        within_deadline=True,
        prev_hash=bytes(32),
        hash=bytes(range(32)),
    )
    dead_letter = DeadLetter(
        reason="bad-framing",
        message="record starts with 7b22, not the single-object marker c301",
        source_topic="exchange.out.TAX",
        source_partition=3,
        source_offset=1042,
        source_timestamp=CREATED_AT,
        original_key=str(INQUIRY_ID).encode("ascii"),
        dead_lettered_at=SETTLED_AT,
        component="worker",
    )
    return {
        "inquiry-request": request,
        "inquiry-response": response,
        "inquiry-outcome": outcome,
        "audit-record": audit,
        "dead-letter": dead_letter,
    }
