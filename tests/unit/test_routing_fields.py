"""Decoded envelope fields to correlator values: raw and logical-typed dicts agree."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from exchange._envelope_fields import inquiry_from_fields, response_from_fields
from exchange._events import ProviderError

ID = "3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17"
CREATED = dt.datetime(2025, 3, 1, 9, 30, 0, 123000, tzinfo=dt.UTC)
CREATED_MS = 1_740_821_400_123


def raw_request() -> dict[str, Any]:
    return {
        "inquiry_id": ID,
        "requester": {"agency": "TAX", "subsystem": "registration"},
        "provider": {"agency": "NOCR", "subsystem": None},
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "purpose": "tax-registration",
        "case_reference": None,
        "end_user_id": "clerk-7",
        "subject": {"kind": "PERSON", "id": "0012345678"},
        "created_at": CREATED_MS,
        "deadline": CREATED_MS + 30_000,
        "trace_parent": None,
        "reply_to": None,
        "payload": b"",
    }


def test_raw_and_logical_request_fields_give_the_same_record() -> None:
    """Ids as UUID and times as datetime convert exactly like text and epoch milliseconds."""
    logical = raw_request() | {
        "inquiry_id": uuid.UUID(ID),
        "created_at": CREATED,
        "deadline": CREATED + dt.timedelta(seconds=30),
    }
    assert inquiry_from_fields(logical, 7) == inquiry_from_fields(raw_request(), 7)
    record = inquiry_from_fields(raw_request(), 7)
    assert (record.created_at_ms, record.deadline_ms, record.received_at_ms) == (
        CREATED_MS,
        CREATED_MS + 30_000,
        7,
    )


def test_optional_request_fields_may_be_absent() -> None:
    """A record of an older envelope revision without the optional fields still converts."""
    fields = raw_request()
    for name in ("case_reference", "end_user_id", "subject", "trace_parent", "reply_to"):
        del fields[name]
    record = inquiry_from_fields(fields, 0)
    assert (record.subject_kind, record.subject_id, record.reply_to) == (None, None, None)


def test_response_fields_take_the_topics_agency_as_responder() -> None:
    """The responder is the source agency; the envelope's error becomes a ProviderError."""
    fields = {
        "inquiry_id": uuid.UUID(ID),
        "responder": {"agency": "NOCR", "subsystem": "identity"},
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "status": "ERROR",
        "error": {"code": "DOWN", "message": "registry down", "retriable": True},
        "answered_by": "AUTOMATIC",
        "responded_at": CREATED,
    }
    arrived = response_from_fields(fields, source_agency="POLICE", now_ms=9)
    assert (arrived.inquiry_id, arrived.responder_agency, arrived.responder_subsystem) == (
        ID,
        "POLICE",
        "identity",
    )
    assert arrived.error == ProviderError("DOWN", "registry down", retriable=True)
    assert (arrived.responded_at_ms, arrived.now_ms, arrived.payload) == (CREATED_MS, 9, None)


TRACEPARENT = "00-3f1c9a527b4e4d1a9c2e5a8b6d0e4f17-9c2e5a8b6d0e4f17-01"


@pytest.mark.parametrize(
    "text",
    ["00-é", "", "garbage", TRACEPARENT.upper(), TRACEPARENT + "\n", TRACEPARENT[:-1] + "٣"],
)
def test_a_trace_parent_not_of_the_w3c_form_is_dropped(text: str) -> None:
    """Anything but version-traceid-parentid-flags in lower-case hex reads as no trace parent."""
    assert inquiry_from_fields(raw_request() | {"trace_parent": text}, 0).trace_parent is None


def test_a_w3c_trace_parent_is_kept() -> None:
    """A well-formed traceparent is carried through unchanged."""
    record = inquiry_from_fields(raw_request() | {"trace_parent": TRACEPARENT}, 0)
    assert record.trace_parent == TRACEPARENT
