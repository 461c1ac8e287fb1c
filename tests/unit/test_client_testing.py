"""exchange.testing: sample payloads fit every demo service; handlers test without Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange import Answer, Inquiry, InquiryRejectedError, InquirySpec
from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder
from exchange.testing import check_answer, make_inquiry, sample_payload

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", SCHEMAS)


def test_samples_fit_every_service_of_the_demo_catalog(catalog: Catalog) -> None:
    """A sampled request encodes as an inquiry and a sampled response passes check_answer."""
    encoder = RequestEncoder(
        catalog, Codec(SchemaStore.from_directory(SCHEMAS)), "TAX", None, reply_to=None
    )
    for service in catalog.services:
        request = sample_payload(catalog, service.id, schemas_path=SCHEMAS)
        assert encoder.encode(InquirySpec(service.id, request, "testing")).value
        response = sample_payload(catalog, service.id, "response", schemas_path=SCHEMAS)
        assert check_answer(catalog, service.id, Answer.found(response), schemas_path=SCHEMAS)


async def test_a_handler_is_tested_with_make_inquiry_and_check_answer(catalog: Catalog) -> None:
    """A handler's wrong answer is caught by check_answer without any broker."""

    async def handler(inquiry: Inquiry) -> Answer:
        return Answer.found({"national_id": inquiry.payload["national_id"]})

    inquiry = make_inquiry("nocr.person.verify.v1", {"national_id": "0012345678"})
    answer = await handler(inquiry)
    with pytest.raises(InquiryRejectedError) as caught:
        check_answer(catalog, inquiry.service, answer, schemas_path=SCHEMAS)
    assert caught.value.reason == "INVALID_PAYLOAD"
    assert check_answer(catalog, inquiry.service, Answer.not_found(), schemas_path=SCHEMAS) is None
