"""The SDK's envelope translation against the demo catalog's real schemas (no broker)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from samples import PERSON, verdict

from exchange._answer import Answer, AnswerStatus
from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import (
    OutcomeDecoder,
    RequestEncoder,
    ServiceCache,
    ServiceSchemas,
    decode_request,
    encode_answer,
    encode_response,
    header_is,
)
from exchange._errors import InquiryRejectedError
from exchange._models import (
    AgencyRef,
    AnswerMode,
    InquiryOutcome,
    InquiryRequest,
    InquiryResponse,
    OutcomeKind,
    ResponseStatus,
)
from exchange._outcome import InquirySpec
from exchange._wire import HEADER_REPLY_TO

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "nocr.person.verify.v1"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(SchemaStore.from_directory(ROOT / "schemas"))


def _encoder(catalog: Catalog, codec: Codec) -> RequestEncoder:
    return RequestEncoder(catalog, codec, "TAX", "registration", reply_to="instance-1")


def test_request_is_a_valid_envelope_with_routing_headers(catalog: Catalog, codec: Codec) -> None:
    """An encoded inquiry decodes as InquiryRequest with the service's provider and deadline."""
    item = _encoder(catalog, codec).encode(
        InquirySpec(SERVICE, PERSON, "tax-registration", subject=("PERSON", "0012345678"))
    )
    request = codec.decode_model(item.value, InquiryRequest)
    assert request.inquiry_id == item.inquiry_id
    assert request.provider == AgencyRef(agency="NOCR", subsystem="identity")
    assert request.requester == AgencyRef(agency="TAX", subsystem="registration")
    assert (request.deadline - request.created_at).total_seconds() == pytest.approx(5, abs=0.01)
    assert request.headers() == item.headers
    assert header_is(item.headers, HEADER_REPLY_TO, b"instance-1")
    assert codec.decode(request.payload)["national_id"] == "0012345678"
    newest = catalog.service(SERVICE)
    assert newest is not None
    assert newest.latest_request is not None
    assert request.payload[2:10] == newest.latest_request.fingerprint


def test_invalid_payload_is_rejected_before_sending(catalog: Catalog, codec: Codec) -> None:
    """A payload that misses a required field raises INVALID_PAYLOAD locally."""
    with pytest.raises(InquiryRejectedError) as caught:
        _encoder(catalog, codec).encode(
            InquirySpec(SERVICE, {"national_id": "1"}, "tax-registration")
        )
    assert caught.value.reason == "INVALID_PAYLOAD"


def test_unknown_service_is_rejected_before_sending(catalog: Catalog, codec: Codec) -> None:
    """A service missing from the catalog raises UNKNOWN_SERVICE locally."""
    with pytest.raises(InquiryRejectedError) as caught:
        _encoder(catalog, codec).encode(InquirySpec("nocr.person.verify.v9", {}, "x"))
    assert caught.value.reason == "UNKNOWN_SERVICE"


def test_response_answers_the_request_as_its_provider(catalog: Catalog, codec: Codec) -> None:
    """The provider's response names the request's provider and carries the payload."""
    item = _encoder(catalog, codec).encode(InquirySpec(SERVICE, PERSON, "tax-registration"))
    received = decode_request(item.value, codec)
    service = catalog.service(SERVICE)
    assert service is not None
    answer = verdict("0012345678")
    value, headers = encode_response(
        codec,
        ServiceSchemas.of(service, codec),
        received,
        status=AnswerStatus.FOUND,
        payload=answer,
        error=None,
        manual=True,
    )
    response = codec.decode_model(value, InquiryResponse)
    assert response.responder == AgencyRef(agency="NOCR", subsystem="identity")
    assert response.answered_by is AnswerMode.MANUAL
    assert response.headers() == headers
    assert response.payload is not None
    assert codec.decode(response.payload)["national_id_status"] == "VALID"
    assert received.inquiry(PERSON).payload == PERSON


@pytest.mark.parametrize(
    ("manual", "mode"), [(False, AnswerMode.AUTOMATIC), (True, AnswerMode.MANUAL)]
)
def test_an_answer_encodes_as_the_response_of_its_mode(
    catalog: Catalog, codec: Codec, manual: bool, mode: AnswerMode
) -> None:
    """encode_answer keeps an ERROR answer's code, message and retriable flag, and says who
    answered (the provider's code, or a person's, alike)."""
    item = _encoder(catalog, codec).encode(InquirySpec(SERVICE, PERSON, "tax-registration"))
    received = decode_request(item.value, codec)
    answer = Answer.error("LEGACY_DOWN", "try later", retriable=True)
    value, _headers = encode_answer(
        codec, ServiceCache(catalog, codec), received, answer, manual=manual
    )
    response = codec.decode_model(value, InquiryResponse)
    assert response.answered_by is mode
    assert response.status is ResponseStatus.ERROR
    assert response.error is not None
    assert (response.error.code, response.error.message) == ("LEGACY_DOWN", "try later")
    assert response.error.retriable


def test_outcome_decodes_to_the_sdk_value(catalog: Catalog, codec: Codec) -> None:
    """A FAILED outcome keeps its error code and inquiry identity."""
    now = dt.datetime.now(dt.UTC)
    inquiry_id = uuid.uuid4()
    model = InquiryOutcome(
        inquiry_id=inquiry_id,
        requester=AgencyRef(agency="TAX"),
        provider=AgencyRef(agency="NOCR", subsystem="identity"),
        service_code="nocr.person.verify",
        service_version=1,
        purpose="tax-registration",
        created_at=now,
        deadline=now,
        kind=OutcomeKind.FAILED,
        status=ResponseStatus.ERROR,
        settled_at=now,
    ).model_copy(update={"error": None})
    outcome = OutcomeDecoder(catalog, codec).decode(codec.encode_model(model))
    assert outcome.inquiry_id == inquiry_id
    assert outcome.kind.value == "FAILED"
    assert outcome.service == SERVICE
    assert outcome.provider == "NOCR"
