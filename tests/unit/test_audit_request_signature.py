"""The requester's signature rides with the pending inquiry (compact, in the state changelog)
and reaches the audit record of every outcome (``AuditRecord.request_signature``)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from samples import PERSON

from agents._bus import BusProcessor
from agents._engine import InputRecord, OutputRecord
from agents._state_store import PartitionState
from exchange._answer import AnswerStatus
from exchange._audit_io import AuditEntry, about_subject
from exchange._audit_signature import (
    COMPACT_SIZE,
    compact_signature,
    compact_text,
    signature_key_id,
)
from exchange._catalog import load_catalog
from exchange._catalog_model import Agency, Catalog
from exchange._changelog import PENDING_SCHEMA_1, decode_state, encode_state
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder, ServiceCache, decode_request, encode_response
from exchange._outcome import InquirySpec
from exchange._signing import Signer
from exchange._state import InquiryRecord, InquiryState
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD, HEADER_SIGNATURE, RecordType, header_value

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
NOW = 1_800_000_000.0
TOPICS = Topics("t")
TAX_KEY = Signer.generate("TAX")
NOCR_KEY = Signer.generate("NOCR")

PENDING = InquiryRecord(
    "3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17",
    "TAX",
    "registration",
    "NOCR",
    "identity",
    "nocr.person.verify",
    1,
    "tax-registration",
    1767225600000,
    1767225630000,
    1767225600120,
    case_reference="TX-1",
    subject_kind="PERSON",
    subject_id="0012345678",
    reply_to="c0ffee",
)
#: PENDING as the changelog held it before request_signature (revision 1 of the Pending
#: schema), bytes written by that code: a restored worker must still read them.
REVISION_1_VALUE = bytes.fromhex(
    "c301aa06ed14584115484833663163396135322d376234652d346431612d396332652d356138623664306534"
    "663137065441580218726567697374726174696f6e084e4f435202106964656e74697479246e6f63722e7065"
    "72736f6e2e76657269667902207461782d726567697374726174696f6e80a0d5edee66e0f4d8edee66f0a1d5"
    "edee66020854582d3100020c504552534f4e021430303132333435363738020c63306666656500"
)


def _header() -> bytes:
    """A real exchange-signature header value by TAX."""
    return TAX_KEY.sign(RecordType.REQUEST, PENDING.inquiry_id, b"request bytes")


# --- compact form -------------------------------------------------------------------------------


def test_the_compact_form_gives_the_header_back_byte_for_byte() -> None:
    """73 bytes (version, key id, signature) that turn back into the very header text."""
    header = _header()
    compact = compact_signature(header)
    assert compact is not None
    assert len(compact) == COMPACT_SIZE
    assert compact_text(compact).encode() == header
    assert signature_key_id(compact_text(compact)) == TAX_KEY.key_id


@pytest.mark.parametrize(
    "header", [b"", b"v1:zz:abc", b"v2:0011223344556677:" + base64.b64encode(bytes(64)), None]
)
def test_a_malformed_or_absent_header_is_not_kept(header: bytes | None) -> None:
    """Only a well-formed v1 header has a compact form; anything else is None."""
    assert compact_signature(header) is None


# --- the state changelog ------------------------------------------------------------------------


def test_a_pending_inquiry_with_its_signature_round_trips() -> None:
    """The changelog keeps the compact signature with the pending inquiry."""
    signed = _signed(PENDING)
    assert decode_state(encode_state(signed)) == signed


def test_state_written_before_the_field_still_decodes() -> None:
    """A revision-1 changelog value (known bytes) reads as the same inquiry, unsigned."""
    assert REVISION_1_VALUE[2:10] != encode_state(PENDING)[2:10]  # a new revision
    assert [f["name"] for f in PENDING_SCHEMA_1["fields"]][-1] == "trace_parent"
    assert decode_state(REVISION_1_VALUE) == PENDING


def test_the_pending_state_grows_by_one_byte_unsigned_and_76_signed() -> None:
    """Size per pending inquiry: a null union branch, or the branch, a 2-byte length, 73 bytes."""
    before = len(REVISION_1_VALUE)
    assert len(encode_state(PENDING)) == before + 1
    signed = _signed(PENDING)
    assert len(encode_state(signed)) == before + 1 + 2 + COMPACT_SIZE


def _signed(record: InquiryRecord) -> InquiryRecord:
    return dataclasses.replace(record, request_signature=compact_signature(_header()))


# --- through the worker's processor --------------------------------------------------------------


class Bus:
    """The worker's processor on one partition, the demo catalog with TAX's and NOCR's keys."""

    def __init__(self) -> None:
        base = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
        self.catalog = _with_keys(base, {"TAX": TAX_KEY, "NOCR": NOCR_KEY})
        self.codec = Codec(SchemaStore.from_directory(ROOT / "schemas"))
        existing = {TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.in_("NOCR"): 2}
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

    def request(self, signer: Signer | None) -> InputRecord:
        encoder = RequestEncoder(
            self.catalog, self.codec, "TAX", "registration", reply_to="r1", signer=signer
        )
        deadline = dt.datetime.fromtimestamp(NOW + 5, dt.UTC)
        spec = InquirySpec(
            VERIFY, dict(PERSON), "tax-registration", deadline=deadline, subject=("PERSON", "1")
        )
        item = encoder.encode(spec)
        return self.record("TAX", item.key, item.value, item.headers)

    def response(self, request: InputRecord, status: AnswerStatus) -> InputRecord:
        assert request.value is not None
        value, headers = encode_response(
            self.codec,
            ServiceCache(self.catalog, self.codec).get(VERIFY),
            decode_request(request.value, self.codec),
            status=status,
            payload=None,
            error=None,
            manual=False,
            signer=NOCR_KEY,
        )
        return self.record("NOCR", request.key, value, headers)

    def record(self, agency: str, key: bytes | None, value: bytes, headers: Any) -> InputRecord:
        self.offset += 1
        return InputRecord(TOPICS.out(agency), 1, self.offset, 0, key, value, tuple(headers))

    def process(self, *records: InputRecord) -> list[OutputRecord]:
        outputs = self.processor.process(list(records), self.state)
        self.state.commit()
        return outputs

    def audits(self, outputs: list[OutputRecord]) -> list[dict[str, Any]]:
        return [
            self.codec.decode(out.value, reader=AUDIT_RECORD)
            for out in outputs
            if out.topic == TOPICS.audit and out.value is not None
        ]


def _with_keys(base: Catalog, signers: dict[str, Signer]) -> Catalog:
    def entry(agency: Agency) -> Agency:
        signer = signers.get(agency.code)
        if signer is None:
            return agency
        key = {"id": signer.key_id, "public_key": base64.b64encode(signer.public_key).decode()}
        return Agency.model_validate({**agency.model_dump(), "keys": [key]})

    return Catalog(
        agencies=tuple(entry(a) for a in base.agencies),
        services=base.services,
        policies=base.policies,
    )


def _requester_header(request: InputRecord) -> str:
    raw = header_value(request.headers, HEADER_SIGNATURE)
    assert raw is not None
    return raw.decode()


@pytest.mark.parametrize(
    ("status", "kind"), [(AnswerStatus.NOT_FOUND, "ANSWERED"), (AnswerStatus.ERROR, "FAILED")]
)
def test_the_outcome_audit_keeps_both_signatures(status: AnswerStatus, kind: str) -> None:
    """ANSWERED or FAILED: request_signature is the requester's, signature the provider's."""
    bus = Bus()
    request = bus.request(TAX_KEY)
    bus.process(request)
    response = bus.response(request, status)
    [audit] = bus.audits(bus.process(response))
    assert audit["kind"] == kind
    assert audit["request_signature"] == _requester_header(request)
    provider = header_value(response.headers, HEADER_SIGNATURE)
    assert provider is not None
    assert audit["signature"] == provider.decode()


def test_a_timed_out_inquiry_keeps_the_requesters_signature() -> None:
    """TIMED_OUT has no response record: still the requester's signature, from the state."""
    bus = Bus()
    request = bus.request(TAX_KEY)
    bus.process(request)
    [audit] = bus.audits(bus.processor.on_tick(int((NOW + 10) * 1000), bus.state))
    assert (audit["kind"], audit["signature"]) == ("TIMED_OUT", None)
    assert audit["request_signature"] == _requester_header(request)


def test_a_restored_pending_inquiry_keeps_its_signature() -> None:
    """After the changelog is replayed into another worker, the outcome still has it."""
    bus = Bus()
    request = bus.request(TAX_KEY)
    bus.process(request)
    [(key, state)] = [(k, v) for k, v in bus.state.items() if isinstance(v, InquiryRecord)]
    assert state.request_signature is not None
    other = Bus()
    other.state[key] = decode_state(encode_state(state))
    other.state.commit()
    other.processor.on_assigned(other.state)
    [audit] = other.audits(other.processor.on_tick(int((NOW + 10) * 1000), other.state))
    assert audit["request_signature"] == _requester_header(request)


def test_an_unsigned_request_has_no_request_signature() -> None:
    """Nothing signed, nothing recorded: the field is null."""
    bus = Bus()
    request = bus.request(None)
    bus.process(request)
    [audit] = bus.audits(bus.process(bus.response(request, AnswerStatus.NOT_FOUND)))
    assert audit["request_signature"] is None


def test_subject_rows_name_the_key_the_requester_signed_with() -> None:
    """`audit subject` rows carry the requester's key id, None for unsigned records."""
    fields = {
        "recorded_at": 1,
        "event": "SETTLED",
        "inquiry_id": "i",
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "subject": {"kind": "PERSON", "id": "1"},
        "request_signature": compact_text(compact_signature(_header()) or b""),
    }
    unsigned = {**fields, "inquiry_id": "j", "request_signature": None}
    entries = [AuditEntry(0, n, (), b"", f) for n, f in enumerate((fields, unsigned))]
    rows = about_subject(entries, "PERSON", "1")
    assert [row["request_signed_with"] for row in rows] == [TAX_KEY.key_id, None]
