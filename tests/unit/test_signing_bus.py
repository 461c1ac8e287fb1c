"""Signature policy in the worker's processor: requests refused, responses failed, audit kept."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from samples import PERSON, VERDICT

from agents._bus import BusProcessor
from agents._engine import InputRecord, OutputRecord
from agents._state_store import PartitionState
from exchange._answer import AnswerStatus
from exchange._catalog import load_catalog
from exchange._catalog_model import Agency, Catalog, Service
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import (
    OutcomeDecoder,
    RequestEncoder,
    ServiceCache,
    decode_request,
    encode_response,
)
from exchange._outcome import InquirySpec
from exchange._signing import Signer
from exchange._signing_relay import relay_headers
from exchange._state import InquiryState
from exchange._topology import Topics
from exchange._wire import (
    AUDIT_RECORD,
    HEADER_SIGNATURE,
    HEADER_SIGNED_RESPONSE,
    INQUIRY_OUTCOME,
    header_value,
)

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"  # signatures: required in the catalog built below
ADDRESS = "post.address.lookup.v1"  # optional
NOW = 1_800_000_000.0
TOPICS = Topics("t")
TAX_KEY, TAX_NEW_KEY, NOCR_KEY = (
    Signer.generate("TAX"),
    Signer.generate("TAX"),
    Signer.generate("NOCR"),
)


def signed_catalog(base: Catalog) -> Catalog:
    """The demo catalog with keys for TAX (two: a rotation) and NOCR, and VERIFY required."""
    keys = {"TAX": [TAX_KEY, TAX_NEW_KEY], "NOCR": [NOCR_KEY]}
    agencies = tuple(
        Agency.model_validate({**agency.model_dump(), "keys": _entries(keys.get(agency.code, []))})
        for agency in base.agencies
    )
    services = tuple(
        Service.model_validate({**s.model_dump(), "signatures": "required"})
        if s.id == VERIFY
        else s
        for s in base.services
    )
    return Catalog(agencies=agencies, services=services, policies=base.policies)


def _entries(signers: list[Signer]) -> list[dict[str, str]]:
    return [
        {"id": s.key_id, "public_key": base64.b64encode(s.public_key).decode()} for s in signers
    ]


class Bus:
    """A processor on one partition with the signed catalog and record builders."""

    def __init__(self) -> None:
        self.catalog = signed_catalog(load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas"))
        self.codec = Codec(SchemaStore.from_directory(ROOT / "schemas"))
        existing = {TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.in_("NOCR"): 2, TOPICS.in_("POST"): 2}
        existing[TOPICS.replies("TAX")] = 2
        self.processor = BusProcessor(
            catalog=self.catalog,
            codec=self.codec,
            topics=TOPICS,
            topic_partitions=existing,
            clock=lambda: NOW,
        )
        self.state: PartitionState[InquiryState] = PartitionState(1)
        self.processor.on_assigned(self.state)
        self.offset = 0

    def request(self, signer: Signer | None, service: str = VERIFY, **payload: Any) -> InputRecord:
        subsystem = "registration"
        encoder = RequestEncoder(
            self.catalog, self.codec, "TAX", subsystem, reply_to="r1", signer=signer
        )
        deadline = dt.datetime.fromtimestamp(NOW + 5, dt.UTC)
        body = {**PERSON, **payload} if service == VERIFY else {"postal_code": "1234567890"}
        item = encoder.encode(InquirySpec(service, body, "tax-registration", deadline=deadline))
        return self.record("TAX", item.key, item.value, item.headers)

    def response(self, request: InputRecord, signer: Signer | None) -> InputRecord:
        assert request.value is not None
        received = decode_request(request.value, self.codec)
        value, headers = encode_response(
            self.codec,
            ServiceCache(self.catalog, self.codec).get(VERIFY),
            received,
            status=AnswerStatus.FOUND,
            payload=VERDICT,
            error=None,
            manual=False,
            signer=signer,
        )
        return self.record("NOCR", request.key, value, headers)

    def record(
        self, agency: str, key: bytes | None, value: bytes, headers: Any = ()
    ) -> InputRecord:
        self.offset += 1
        return InputRecord(TOPICS.out(agency), 1, self.offset, 0, key, value, tuple(headers))

    def process(self, *records: InputRecord) -> list[OutputRecord]:
        outputs = self.processor.process(list(records), self.state)
        self.state.commit()
        return outputs

    def decode(self, output: OutputRecord, name: str) -> dict[str, Any]:
        assert output.value is not None
        return self.codec.decode(output.value, reader=name)


@pytest.fixture
def bus() -> Bus:
    return Bus()


def _rejected(bus: Bus, request: InputRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    outcome, audit = bus.process(request)
    assert (outcome.topic, audit.topic) == (TOPICS.replies("TAX"), TOPICS.audit)
    return bus.decode(outcome, INQUIRY_OUTCOME), bus.decode(audit, AUDIT_RECORD)


def test_signed_request_and_response_settle_answered_with_the_signature_audited(bus: Bus) -> None:
    """Both sides sign: routed, ANSWERED, and the audit record keeps the provider's header."""
    request = bus.request(TAX_KEY)
    (routed,) = bus.process(request)
    assert header_value(routed.headers, HEADER_SIGNATURE) is not None  # forwarded as written
    response = bus.response(request, NOCR_KEY)
    outcome, audit = bus.process(response)
    assert bus.decode(outcome, INQUIRY_OUTCOME)["kind"] == "ANSWERED"
    signature = header_value(response.headers, HEADER_SIGNATURE)
    assert signature is not None
    assert bus.decode(audit, AUDIT_RECORD)["signature"] == signature.decode()


def test_an_unsigned_request_to_a_required_service_is_rejected(bus: Bus) -> None:
    """signatures: required and no header: REJECTED/BAD_SIGNATURE, never forwarded."""
    outcome, audit = _rejected(bus, bus.request(None))
    assert (outcome["kind"], outcome["reject_reason"]) == ("REJECTED", "BAD_SIGNATURE")
    assert (audit["reject_reason"], audit["signature"]) == ("BAD_SIGNATURE", None)


def test_a_request_signed_with_a_key_not_in_the_catalog_is_rejected(bus: Bus) -> None:
    """A forger's key (not listed for TAX) does not pass, and the audit keeps its header."""
    outcome, audit = _rejected(bus, bus.request(Signer.generate("TAX")))
    assert outcome["reject_reason"] == "BAD_SIGNATURE"
    assert str(audit["signature"]).startswith("v1:")


def test_a_request_changed_after_signing_is_rejected(bus: Bus) -> None:
    """One changed byte of the payload (still a valid request) breaks the signature."""
    request = bus.request(TAX_KEY)
    assert request.value is not None
    changed = request.value.replace(b"0012345678", b"0012345679")
    assert changed != request.value
    forged = bus.record("TAX", request.key, changed, request.headers)
    outcome, _ = _rejected(bus, forged)
    assert outcome["reject_reason"] == "BAD_SIGNATURE"


def test_the_new_key_of_a_rotation_is_accepted_alongside_the_old(bus: Bus) -> None:
    """With both TAX keys listed, a request signed by either is routed."""
    for signer in (TAX_KEY, TAX_NEW_KEY):
        (routed,) = bus.process(bus.request(signer))
        assert routed.topic == TOPICS.in_("NOCR")


def test_an_unsigned_response_to_a_required_service_fails_the_inquiry(bus: Bus) -> None:
    """The provider must sign too: FAILED/INVALID_RESPONSE naming the signature, no payload."""
    request = bus.request(TAX_KEY)
    bus.process(request)
    outcome, _ = bus.process(bus.response(request, None))
    decoded = bus.decode(outcome, INQUIRY_OUTCOME)
    assert (decoded["kind"], decoded["error"]["code"], decoded["payload"]) == (
        "FAILED",
        "INVALID_RESPONSE",
        None,
    )


def test_a_response_signed_with_the_requesters_key_fails(bus: Bus) -> None:
    """A signature must be the responder's: TAX's key on NOCR's response does not verify."""
    request = bus.request(TAX_KEY)
    bus.process(request)
    wrong = Signer("NOCR", Ed25519PrivateKey.from_private_bytes(TAX_KEY.private_bytes()))
    outcome, _ = bus.process(bus.response(request, wrong))
    assert bus.decode(outcome, INQUIRY_OUTCOME)["kind"] == "FAILED"


def test_optional_services_take_unsigned_requests_but_verify_signed_ones(bus: Bus) -> None:
    """Where signatures are optional, unsigned passes and a bad signature is still refused."""
    (routed,) = bus.process(bus.request(None, ADDRESS))
    assert routed.topic == TOPICS.in_("POST")
    outcome, _ = _rejected(bus, bus.request(Signer.generate("TAX"), ADDRESS))
    assert outcome["reject_reason"] == "BAD_SIGNATURE"


# --- the provider's signature, relayed to the requester ----------------------------------------


def _answered(bus: Bus) -> OutputRecord:
    request = bus.request(TAX_KEY)
    bus.process(request)
    outcome, _ = bus.process(bus.response(request, NOCR_KEY))
    return outcome


def test_the_requester_verifies_the_providers_signature_on_its_answer(bus: Bus) -> None:
    """The outcome carries the signed response; the SDK's decoder names NOCR's key id and
    keeps the proof (signature header and the exact response bytes)."""
    outcome = _answered(bus)
    assert outcome.value is not None
    decoded = OutcomeDecoder(bus.catalog, bus.codec).decode(outcome.value, headers=outcome.headers)
    assert decoded.signed_by == NOCR_KEY.key_id
    assert decoded.proof is not None
    assert decoded.proof.response == header_value(outcome.headers, HEADER_SIGNED_RESPONSE)


def test_a_relayed_response_changed_on_the_way_is_not_verified(bus: Bus) -> None:
    """A bus (or anyone) that alters the relayed response loses the provider's signature."""
    outcome = _answered(bus)
    assert outcome.value is not None
    headers = [
        (name, value[:-1] + bytes((value[-1] ^ 1,)) if name == HEADER_SIGNED_RESPONSE else value)
        for name, value in outcome.headers
    ]
    decoded = OutcomeDecoder(bus.catalog, bus.codec).decode(outcome.value, headers=headers)
    assert (decoded.kind, decoded.signed_by, decoded.proof) == ("ANSWERED", None, None)


def test_a_signed_response_that_does_not_back_the_outcome_is_not_verified(bus: Bus) -> None:
    """The provider's genuine signature on another inquiry's answer proves nothing here."""
    first, second = _answered(bus), _answered(bus)
    assert second.value is not None
    relayed = [(n, v) for n, v in first.headers if n in (HEADER_SIGNATURE, HEADER_SIGNED_RESPONSE)]
    decoded = OutcomeDecoder(bus.catalog, bus.codec).decode(second.value, headers=relayed)
    assert decoded.signed_by is None


def test_no_relay_when_it_would_pass_the_size_limit() -> None:
    """An outcome whose copy of the response would pass the record limit goes without it."""
    headers = [(HEADER_SIGNATURE, b"v1:x:y")]
    assert relay_headers(headers, b"r" * 100, outcome_size=100, limit=2000) != ()
    assert relay_headers(headers, b"r" * 1000, outcome_size=1000, limit=2000) == ()
    assert relay_headers([], b"r", outcome_size=1, limit=2000) == ()
