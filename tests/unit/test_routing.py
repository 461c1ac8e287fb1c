"""Routing and policy: one test (at least) per rule, on the demo catalog and real schemas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._correlation import INVALID_RESPONSE_CODE, Correlator
from exchange._events import RequestAccepted, RequestRejected, ResponseArrived, Settlement
from exchange._models import RejectReason
from exchange._routing import Rejection, Router
from exchange._state import Phase

ROOT = Path(__file__).resolve().parents[2]
ID = "3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17"
NOW = 1_740_821_400_000
SERVICE = "nocr.person.verify.v1"
PERSON = {
    "national_id": "0012345678",
    "birth_date": dt.date(1990, 5, 17),
    "first_name": "Sara",
    "last_name": "Ahmadi",
    "father_name": None,
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(SchemaStore.from_directory(ROOT / "schemas"))


@pytest.fixture(scope="module")
def router(catalog: Catalog, codec: Codec) -> Router:
    return Router(catalog, codec)


def payload(catalog: Catalog, codec: Codec, service: str = SERVICE, role: str = "request") -> bytes:
    found = catalog.service(service)
    assert found is not None
    revisions = found.request_schemas if role == "request" else found.response_schemas
    schema = codec.store.by_fingerprint(revisions[-1].fingerprint)
    datum: dict[str, Any] = PERSON
    if role == "response":
        datum = {
            "national_id": "0012345678",
            "national_id_status": "VALID",
            "birth_date_match": True,
            "first_name_match": "EXACT",
            "last_name_match": "EXACT",
            "father_name_match": None,
            "alive": True,
            "death_date": None,
            "verified_at": dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC),
        }
    return codec.encode(schema, datum)


def request(catalog: Catalog, codec: Codec, **changes: Any) -> dict[str, Any]:
    """Raw request fields as the workers read them (ids as text, times as epoch ms)."""
    fields: dict[str, Any] = {
        "inquiry_id": ID,
        "requester": {"agency": "TAX", "subsystem": "registration"},
        "provider": {"agency": "NOCR", "subsystem": "identity"},
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "purpose": "tax-registration",
        "case_reference": "CASE-1",
        "end_user_id": "clerk-7",
        "subject": {"kind": "PERSON", "id": "0012345678"},
        "created_at": NOW - 20,
        "deadline": NOW + 5_000,
        "trace_parent": None,
        "reply_to": "tax-1",
        "payload": payload(catalog, codec),
    }
    return fields | changes


def decide(router: Router, fields: dict[str, Any], source: str = "TAX", key: Any = ...) -> Any:
    record_key = fields["inquiry_id"].encode() if key is ... else key
    return router.request_event(fields, source_agency=source, key=record_key, now_ms=NOW)


def rejection(event: Any) -> Rejection:
    assert isinstance(event, RequestRejected), event
    return Rejection(RejectReason(event.reason), event.detail)


def reason(router: Router, fields: dict[str, Any], **kw: Any) -> RejectReason:
    return rejection(decide(router, fields, **kw)).reason


# --- accepted ------------------------------------------------------------------------------------


def test_valid_request_is_accepted_with_its_fields(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A request that passes every rule becomes RequestAccepted with the envelope's identity."""
    event = decide(router, request(catalog, codec))
    assert isinstance(event, RequestAccepted)
    inquiry = event.inquiry
    assert (inquiry.inquiry_id, inquiry.requester_subsystem) == (ID, "registration")
    assert (inquiry.provider_agency, inquiry.deadline_ms, inquiry.received_at_ms) == (
        "NOCR",
        NOW + 5_000,
        NOW,
    )
    assert (inquiry.subject_kind, inquiry.subject_id, inquiry.reply_to) == (
        "PERSON",
        "0012345678",
        "tax-1",
    )


def test_older_request_revision_is_accepted(router: Router, catalog: Catalog, codec: Codec) -> None:
    """Every request revision of the service is valid, not only the newest."""
    service = catalog.service(SERVICE)
    assert service is not None
    oldest = codec.store.by_fingerprint(service.request_schemas[0].fingerprint)
    old = codec.encode(oldest, {k: v for k, v in PERSON.items() if k != "father_name"})
    assert isinstance(decide(router, request(catalog, codec, payload=old)), RequestAccepted)


def test_agency_without_subsystem_uses_agency_grants_only(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A requester without subsystem is checked against agency-wide grants (none here)."""
    fields = request(catalog, codec, requester={"agency": "TAX", "subsystem": None})
    assert reason(router, fields) == RejectReason.NOT_ALLOWED


# --- MALFORMED -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["not-a-uuid", ID.upper(), ID.replace("-", ""), f"{{{ID}}}"])
def test_inquiry_id_must_be_a_canonical_uuid(
    router: Router, catalog: Catalog, codec: Codec, bad_id: str
) -> None:
    """An id that is not the 36-character lower-case UUID text is MALFORMED."""
    assert reason(router, request(catalog, codec, inquiry_id=bad_id)) == RejectReason.MALFORMED


@pytest.mark.parametrize("key", [None, b"other", ID.upper().encode()])
def test_record_key_must_be_the_inquiry_id(
    router: Router, catalog: Catalog, codec: Codec, key: bytes | None
) -> None:
    """A key other than the inquiry id would break co-partitioning: MALFORMED."""
    assert reason(router, request(catalog, codec), key=key) == RejectReason.MALFORMED


@pytest.mark.parametrize("reply_to", ["", "café", "a\nb", "x" * 129, "\x00"])
def test_reply_to_must_be_short_printable_ascii(
    router: Router, catalog: Catalog, codec: Codec, reply_to: str
) -> None:
    """A reply-to outside 1-128 printable ASCII characters cannot travel in a header: MALFORMED."""
    fields = request(catalog, codec, reply_to=reply_to)
    assert reason(router, fields) == RejectReason.MALFORMED


def test_a_long_printable_reply_to_is_accepted(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """128 printable ASCII characters, spaces and punctuation included, are a valid reply-to."""
    fields = request(catalog, codec, reply_to="a b~" * 32)
    assert decide(router, fields).inquiry.reply_to == "a b~" * 32


# --- UNKNOWN_AGENCY / WRONG_REQUESTER ------------------------------------------------------------


def test_topic_of_an_agency_not_in_the_catalog(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A request read from the topic of an agency the catalog lacks is UNKNOWN_AGENCY."""
    fields = request(catalog, codec, requester={"agency": "GHOST", "subsystem": None})
    assert reason(router, fields, source="GHOST") == RejectReason.UNKNOWN_AGENCY


def test_requester_must_be_the_topics_agency(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A request naming another requester than the writer is WRONG_REQUESTER."""
    fields = request(catalog, codec, requester={"agency": "POLICE", "subsystem": "traffic"})
    found = rejection(decide(router, fields, source="TAX"))
    assert found.reason == RejectReason.WRONG_REQUESTER
    assert "POLICE" in found.detail


def test_unknown_requester_subsystem(router: Router, catalog: Catalog, codec: Codec) -> None:
    """A subsystem the requester agency does not declare is UNKNOWN_AGENCY."""
    fields = request(catalog, codec, requester={"agency": "TAX", "subsystem": "canteen"})
    assert reason(router, fields) == RejectReason.UNKNOWN_AGENCY


def test_unknown_provider_agency(router: Router, catalog: Catalog, codec: Codec) -> None:
    """A provider the catalog lacks is UNKNOWN_AGENCY."""
    fields = request(catalog, codec, provider={"agency": "GHOST", "subsystem": None})
    assert reason(router, fields) == RejectReason.UNKNOWN_AGENCY


# --- UNKNOWN_SERVICE -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "version"), [("nocr.person.teleport", 1), ("nocr.person.verify", 2)]
)
def test_service_must_exist_with_that_version(
    router: Router, catalog: Catalog, codec: Codec, code: str, version: int
) -> None:
    """An unknown service code, or a version that does not exist, is UNKNOWN_SERVICE."""
    fields = request(catalog, codec, service_code=code, service_version=version)
    assert reason(router, fields) == RejectReason.UNKNOWN_SERVICE


def test_provider_must_be_the_services_provider(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """Asking another agency for a service it does not provide is UNKNOWN_SERVICE."""
    fields = request(catalog, codec, provider={"agency": "POLICE", "subsystem": None})
    found = rejection(decide(router, fields))
    assert found.reason == RejectReason.UNKNOWN_SERVICE
    assert "provided by NOCR" in found.detail


def test_provider_subsystem_must_match_when_given(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A provider subsystem other than the service's is UNKNOWN_SERVICE; none at all is fine."""
    wrong = request(catalog, codec, provider={"agency": "NOCR", "subsystem": "archive"})
    assert reason(router, wrong) == RejectReason.UNKNOWN_SERVICE
    agency_only = request(catalog, codec, provider={"agency": "NOCR", "subsystem": None})
    assert isinstance(decide(router, agency_only), RequestAccepted)


# --- NOT_ALLOWED / PURPOSE_NOT_ALLOWED -----------------------------------------------------------


def test_requester_without_a_grant_is_not_allowed(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A subsystem with no policy for the service is NOT_ALLOWED (grants are per subsystem)."""
    fields = request(catalog, codec, requester={"agency": "TAX", "subsystem": "audit"})
    found = rejection(decide(router, fields))
    assert found.reason == RejectReason.NOT_ALLOWED
    assert found.detail == f"TAX/audit may not ask {SERVICE}"


def test_purpose_must_be_granted(router: Router, catalog: Catalog, codec: Codec) -> None:
    """A granted requester asking for a purpose it was not granted is PURPOSE_NOT_ALLOWED."""
    fields = request(catalog, codec, purpose="loan-application")
    assert reason(router, fields) == RejectReason.PURPOSE_NOT_ALLOWED


def test_policy_is_checked_before_the_payload(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A requester that may not ask gets NOT_ALLOWED even with a broken payload."""
    fields = request(
        catalog, codec, requester={"agency": "TAX", "subsystem": "audit"}, payload=b"junk"
    )
    assert reason(router, fields) == RejectReason.NOT_ALLOWED


# --- DEADLINE_PAST / DEADLINE_TOO_FAR ------------------------------------------------------------


@pytest.mark.parametrize("deadline", [NOW, NOW - 1, 0])
def test_deadline_must_be_in_the_future(
    router: Router, catalog: Catalog, codec: Codec, deadline: int
) -> None:
    """A deadline at or before the moment the bus reads the request is DEADLINE_PAST."""
    assert reason(router, request(catalog, codec, deadline=deadline)) == RejectReason.DEADLINE_PAST


@pytest.mark.parametrize("deadline", [NOW, NOW - 1])
def test_a_request_written_in_time_but_read_late_is_accepted(
    router: Router, catalog: Catalog, codec: Codec, deadline: int
) -> None:
    """Written before its deadline, read at or after it (the bus was behind): not the
    requester's fault, so not DEADLINE_PAST; the correlator times it out."""
    fields = request(catalog, codec, deadline=deadline)
    key = fields["inquiry_id"].encode()
    event = router.request_event(
        fields, source_agency="TAX", key=key, now_ms=NOW, written_at_ms=deadline - 1
    )
    assert isinstance(event, RequestAccepted)


@pytest.mark.parametrize("written_at", [NOW - 5, NOW + 60_000, 0, -1])
def test_a_request_written_after_its_deadline_is_deadline_past(
    router: Router, catalog: Catalog, codec: Codec, written_at: int
) -> None:
    """A deadline at or before the record's timestamp is DEADLINE_PAST; a timestamp after the
    read (a writer's clock ahead) or none counts as the read."""
    fields = request(catalog, codec, deadline=NOW - 5)
    key = fields["inquiry_id"].encode()
    event = router.request_event(
        fields, source_agency="TAX", key=key, now_ms=NOW, written_at_ms=written_at
    )
    assert rejection(event).reason == RejectReason.DEADLINE_PAST


def test_deadline_within_the_services_maximum(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """The service allows 30 s: exactly 30 s is accepted, one millisecond more is too far."""
    at_limit = request(catalog, codec, deadline=NOW + 30_000)
    assert isinstance(decide(router, at_limit), RequestAccepted)
    too_far = request(catalog, codec, deadline=NOW + 30_001)
    assert reason(router, too_far) == RejectReason.DEADLINE_TOO_FAR


# --- PAYLOAD_TOO_LARGE / INVALID_PAYLOAD ---------------------------------------------------------


def test_payload_over_the_limit_is_too_large(catalog: Catalog, codec: Codec) -> None:
    """A payload over the router's limit is PAYLOAD_TOO_LARGE, before it is decoded."""
    small = Router(catalog, codec, max_payload_bytes=20)
    assert reason(small, request(catalog, codec)) == RejectReason.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"junk",
        b"\xc3\x01" + bytes(8) + b"\x00",  # a fingerprint no schema has
    ],
)
def test_payload_that_is_not_a_framed_record_is_invalid(
    router: Router, catalog: Catalog, codec: Codec, bad: bytes
) -> None:
    """Bytes that are not a single-object record are INVALID_PAYLOAD."""
    assert reason(router, request(catalog, codec, payload=bad)) == RejectReason.INVALID_PAYLOAD


def test_payload_of_another_schema_is_invalid(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A valid record of another schema (here the service's response) is INVALID_PAYLOAD."""
    other = payload(catalog, codec, role="response")
    found = rejection(decide(router, request(catalog, codec, payload=other)))
    assert found.reason == RejectReason.INVALID_PAYLOAD
    assert "not a request revision" in found.detail


def test_truncated_payload_is_invalid(router: Router, catalog: Catalog, codec: Codec) -> None:
    """A request revision's header with a cut-off body is INVALID_PAYLOAD."""
    cut = payload(catalog, codec)[:14]
    assert reason(router, request(catalog, codec, payload=cut)) == RejectReason.INVALID_PAYLOAD


def test_payload_with_trailing_bytes_is_invalid(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """Bytes after the record's body are INVALID_PAYLOAD."""
    longer = payload(catalog, codec) + b"\x00"
    assert reason(router, request(catalog, codec, payload=longer)) == RejectReason.INVALID_PAYLOAD


# --- responses -----------------------------------------------------------------------------------


def response(catalog: Catalog, codec: Codec, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "inquiry_id": ID,
        "responder": {"agency": "NOCR", "subsystem": "identity"},
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "status": "FOUND",
        "error": None,
        "answered_by": "AUTOMATIC",
        "responded_at": NOW - 3,
        "payload": payload(catalog, codec, role="response"),
        "trace_parent": None,
    }
    return fields | changes


def arrive(router: Router, fields: dict[str, Any], source: str = "NOCR") -> ResponseArrived:
    return router.response_event(fields, source_agency=source, now_ms=NOW)


def test_valid_response_has_no_problem(router: Router, catalog: Catalog, codec: Codec) -> None:
    """A provider's response with a payload of the service's response schema is valid."""
    arrived = arrive(router, response(catalog, codec))
    assert arrived.invalid is None
    assert (arrived.responder_agency, arrived.responded_at_ms, arrived.now_ms) == (
        "NOCR",
        NOW - 3,
        NOW,
    )


def test_responder_is_the_topics_agency_whatever_the_envelope_says(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A response written by POLICE claiming to be NOCR is POLICE's (foreign) and invalid."""
    arrived = arrive(router, response(catalog, codec), source="POLICE")
    assert arrived.responder_agency == "POLICE"
    assert arrived.invalid is not None
    assert "POLICE wrote it" in arrived.invalid


def test_response_for_an_unknown_service_is_invalid(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """A response naming a service the catalog lacks is invalid."""
    arrived = arrive(router, response(catalog, codec, service_version=9))
    assert arrived.invalid == "nocr.person.verify.v9 is not in the catalog"


def test_found_without_payload_is_invalid_not_found_without_is_fine(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """FOUND must carry the answer; NOT_FOUND and ERROR may come without payload."""
    assert arrive(router, response(catalog, codec, payload=None)).invalid is not None
    for status in ("NOT_FOUND", "ERROR"):
        assert arrive(router, response(catalog, codec, status=status, payload=None)).invalid is None


@pytest.mark.parametrize("role", ["request", "junk"])
def test_response_payload_must_be_a_response_revision(
    router: Router, catalog: Catalog, codec: Codec, role: str
) -> None:
    """A response payload of the request schema, or not a record at all, is invalid."""
    bad = payload(catalog, codec, role="request") if role == "request" else b"junk"
    assert arrive(router, response(catalog, codec, payload=bad)).invalid is not None


def test_response_error_is_carried(router: Router, catalog: Catalog, codec: Codec) -> None:
    """The provider's ErrorInfo travels as ProviderError."""
    error = {"code": "REGISTRY_DOWN", "message": "later", "retriable": True}
    arrived = arrive(router, response(catalog, codec, status="ERROR", error=error, payload=None))
    assert arrived.error is not None
    assert (arrived.error.code, arrived.error.retriable) == ("REGISTRY_DOWN", True)


def test_invalid_response_from_the_provider_settles_failed(
    router: Router, catalog: Catalog, codec: Codec
) -> None:
    """Routed, then answered with a broken payload: FAILED with INVALID_RESPONSE, no payload."""
    correlator = Correlator()
    correlator.handle(decide(router, request(catalog, codec)))
    effects = correlator.handle(arrive(router, response(catalog, codec, payload=b"junk")))
    (settlement,) = [e for e in effects if isinstance(e, Settlement)]
    assert settlement.kind == Phase.FAILED
    assert settlement.error is not None
    assert settlement.error.code == INVALID_RESPONSE_CODE
    assert settlement.payload is None
