"""The state changelog encoding: round trips, framing, and refusal of foreign bytes."""

from __future__ import annotations

import io

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange._changelog import (
    PENDING_SCHEMA,
    SETTLED_SCHEMA,
    InquiryStateCodec,
    decode_state,
    encode_state,
)
from exchange._errors import FramingError, SchemaMismatchError, UnknownSchemaError
from exchange._events import StateChange
from exchange._state import SETTLED_PHASES, InquiryRecord, Phase, Settled

_text = st.text(max_size=40)
_opt = st.none() | _text
_ms = st.integers(min_value=0, max_value=2**53)

records = st.builds(
    InquiryRecord,
    inquiry_id=st.uuids().map(str),
    requester_agency=_text,
    requester_subsystem=_opt,
    provider_agency=_text,
    provider_subsystem=_opt,
    service_code=_text,
    service_version=st.integers(min_value=1, max_value=2**31 - 1),
    purpose=_text,
    created_at_ms=_ms,
    deadline_ms=_ms,
    received_at_ms=_ms,
    case_reference=_opt,
    end_user_id=_opt,
    subject_kind=_opt,
    subject_id=_opt,
    reply_to=_opt,
    trace_parent=_opt,
)
settled = st.builds(
    lambda record, phase, at: record.settle(phase, at),
    records,
    st.sampled_from(sorted(SETTLED_PHASES)),
    _ms,
)


def sample() -> InquiryRecord:
    return InquiryRecord(
        inquiry_id="8f0d7c8e-9d7b-4c53-9a57-1e2f3a4b5c6d",
        requester_agency="TAX",
        requester_subsystem="registration",
        provider_agency="NOCR",
        provider_subsystem=None,
        service_code="nocr.person.verify",
        service_version=1,
        purpose="business-registration",
        created_at_ms=1_700_000_000_000,
        deadline_ms=1_700_000_030_000,
        received_at_ms=1_700_000_000_004,
        subject_kind="PERSON",
        subject_id="0012345678",
        trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


@given(records)
def test_pending_state_round_trips(record: InquiryRecord) -> None:
    """Every pending record decodes to an equal value."""
    assert decode_state(encode_state(record)) == record


@given(settled)
def test_settled_state_round_trips(mark: Settled) -> None:
    """Every settled mark decodes to an equal value, phase as the Phase enum."""
    decoded = decode_state(encode_state(mark))
    assert decoded == mark
    assert isinstance(decoded, Settled)
    assert decoded.phase is mark.phase


def test_value_is_single_object_encoded_and_readable_with_the_published_schema() -> None:
    """C3 01 + fingerprint + plain Avro body that any Avro library reads with the schema."""
    value = encode_state(sample())
    assert value[:2] == b"\xc3\x01"
    body = fastavro.schemaless_reader(io.BytesIO(value[10:]), PENDING_SCHEMA, None)
    assert isinstance(body, dict)
    assert body["inquiry_id"] == sample().inquiry_id
    assert body["deadline_ms"] == 1_700_000_030_000


def test_pending_and_settled_carry_different_fingerprints() -> None:
    """The fingerprint alone tells a pending entry from a settled one."""
    pending = encode_state(sample())
    mark = encode_state(sample().settle(Phase.ANSWERED, 1))
    assert pending[2:10] != mark[2:10]
    assert PENDING_SCHEMA["name"] != SETTLED_SCHEMA["name"]


def test_encoded_entries_are_compact() -> None:
    """Beyond its text, an entry costs under 64 bytes (header, lengths, varint times)."""
    record = sample()
    text = [getattr(record, name) for name in record.__dataclass_fields__]
    text_bytes = sum(len(v) for v in text if isinstance(v, str))
    assert len(encode_state(record)) - text_bytes < 64
    mark = record.settle(Phase.TIMED_OUT, 1_700_000_030_000)
    assert len(encode_state(mark)) - len(mark.inquiry_id) - len("TAXNOCRnocr.person.verify") < 40


def test_state_change_gives_key_and_value_and_tombstone() -> None:
    """StateChange supplies the changelog key (id, UTF-8) and value; None state is a tombstone."""
    change = StateChange(sample().inquiry_id, sample())
    assert change.key() == sample().inquiry_id.encode()
    value = change.value()
    assert value is not None
    assert decode_state(value) == sample()
    assert StateChange(sample().inquiry_id, None).value() is None


def test_codec_object_round_trips() -> None:
    """InquiryStateCodec is encode_state/decode_state for engines that take a codec object."""
    codec = InquiryStateCodec()
    assert codec.decode(codec.encode(sample())) == sample()


@pytest.mark.parametrize("value", [b"", b"\x00\x01", b"{json}", b"\xc3\x02" + bytes(8)])
def test_bad_framing_is_a_framing_error(value: bytes) -> None:
    """Bytes without the single-object header are refused as bad framing."""
    with pytest.raises(FramingError):
        decode_state(value)


def test_unknown_fingerprint_is_an_unknown_schema_error() -> None:
    """A well-framed value of another schema is refused by fingerprint."""
    with pytest.raises(UnknownSchemaError):
        decode_state(b"\xc3\x01" + bytes(8) + b"\x00")


def test_truncated_body_is_a_schema_mismatch() -> None:
    """A cut-off body of a known schema is a schema mismatch, not a crash."""
    with pytest.raises(SchemaMismatchError):
        decode_state(encode_state(sample())[:20])
