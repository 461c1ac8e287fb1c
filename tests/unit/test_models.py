"""The envelope models: they mirror the schemas, and convert to and from Avro losslessly."""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from typing import Any

import pytest
from annotated_types import Ge, Le
from codec_samples import CREATED_AT, INQUIRY_ID, sample_store, samples
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ValidationError

from exchange._codec import Codec
from exchange._errors import SchemaMismatchError
from exchange._models import (
    AgencyRef,
    AnswerMode,
    AuditEvent,
    AuditRecord,
    DeadLetter,
    EnvelopeModel,
    InquiryOutcome,
    InquiryRequest,
    InquiryResponse,
    OutcomeKind,
    RejectReason,
    ResponseStatus,
    SubjectKind,
    utc_millis,
)
from exchange._wire import HEADER_DLQ_REASON, HEADER_INQUIRY_ID, HEADER_REPLY_TO, HEADER_TYPE

CODEC = Codec(sample_store())
MODELS: list[type[EnvelopeModel]] = [
    InquiryRequest,
    InquiryResponse,
    InquiryOutcome,
    AuditRecord,
    DeadLetter,
]
ENUMS = [SubjectKind, ResponseStatus, AnswerMode, OutcomeKind, RejectReason, AuditEvent]


# --- the models mirror the schemas ---------------------------------------------------------


def _branches(avro_type: Any) -> list[Any]:
    return avro_type if isinstance(avro_type, list) else [avro_type]


def _named_types(node: Any, found: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, list):
        for branch in node:
            _named_types(branch, found)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum"):
            found.setdefault(node["name"], node)
        for field in node.get("fields", []):
            _named_types(field["type"], found)
    return found


def _check_record(model: type[BaseModel], record: dict[str, Any], named: dict[str, Any]) -> None:
    assert list(model.model_fields) == [f["name"] for f in record["fields"]], model.__name__
    for field in record["fields"]:
        info = model.model_fields[field["name"]]
        nullable = "null" in _branches(field["type"])
        assert (not info.is_required()) == ("default" in field), field["name"]
        assert nullable == (type(None) in typing.get_args(info.annotation)), field["name"]
        for branch in _branches(field["type"]):
            ref = named.get(branch if isinstance(branch, str) else branch.get("name", ""))
            if ref is not None and ref["type"] == "record":
                nested = next(a for a in typing.get_args(info.annotation) or [info.annotation])
                assert isinstance(nested, type), nested
                assert issubclass(nested, BaseModel), nested
                _check_record(nested, ref, named)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_fields_mirror_the_schema(model: type[EnvelopeModel]) -> None:
    """Same fields in the same order; optional exactly where the schema has a default."""
    definition = dict(CODEC.store.get(model.AVRO_NAME).definition)
    _check_record(model, definition, _named_types(definition, {}))


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_enum_symbols_mirror_the_schema(enum: type[Any]) -> None:
    """Each StrEnum has the Avro enum's symbols, in order, in every current schema that defines
    it (older revisions, kept so that old records decode, may lack symbols added since)."""
    for schema in (CODEC.store.get(name) for name in CODEC.store.names()):
        definition = _named_types(dict(schema.definition), {}).get(enum.__name__)
        if definition is not None:
            assert [m.value for m in enum] == definition["symbols"], schema.name


# --- lossless conversion ---------------------------------------------------------------------

_TEXT = st.text(max_size=12)
_TIMESTAMPS = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.builds(
        dt.timezone, st.timedeltas(dt.timedelta(hours=-14), dt.timedelta(hours=14))
    ),
)


def _strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        return st.none() | _strategy(inner, metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        extra = [m for arg in args[1:] for m in getattr(arg, "metadata", [arg])]  # FieldInfo
        return _strategy(args[0], [*metadata, *extra])
    bounds = {type(m): m for m in metadata}
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: _TEXT,
        bytes: st.binary(max_size=40),
        bool: st.booleans(),
        uuid.UUID: st.uuids(),
        AwareDatetime: _TIMESTAMPS,
        int: st.integers(
            bounds[Ge].ge if Ge in bounds else None, bounds[Le].le if Le in bounds else None
        ),
    }
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_strategy(annotation)
    return st.sampled_from(list(annotation))  # a StrEnum


def _model_strategy(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    fields = {n: _strategy(f.annotation, list(f.metadata)) for n, f in model.model_fields.items()}
    return st.builds(model, **fields)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_model_survives_avro_and_bytes(model: type[EnvelopeModel], data: st.DataObject) -> None:
    """from_avro(to_avro(m)) == m, and decode(encode(m)) == m, for generated models."""
    value = data.draw(_model_strategy(model))
    assert model.from_avro(value.to_avro()) == value
    assert CODEC.decode_model(CODEC.encode_model(value), model) == value


@pytest.mark.parametrize("stem", sorted(samples(CODEC)))
def test_sample_models_survive_bytes(stem: str) -> None:
    """The hand-written samples round-trip through bytes unchanged."""
    model = samples(CODEC)[stem]
    assert CODEC.decode_model(CODEC.encode_model(model), type(model)) == model


# --- field semantics ---------------------------------------------------------------------------


def _request(**changes: Any) -> InquiryRequest:
    base = samples(CODEC)["inquiry-request"]
    return InquiryRequest.model_validate({**base.model_dump(), **changes})


def test_times_are_stored_in_utc_at_millisecond_precision() -> None:
    """An aware time in another zone becomes UTC, and microseconds below the ms are cut."""
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    request = _request(created_at=dt.datetime(2025, 3, 1, 13, 0, 0, 123999, tzinfo=tehran))
    assert request.created_at == dt.datetime(2025, 3, 1, 9, 30, 0, 123000, tzinfo=dt.UTC)
    assert request.created_at.tzinfo is dt.UTC


def test_naive_times_are_refused() -> None:
    """A datetime without a zone is ambiguous and raises a validation error."""
    with pytest.raises(ValidationError, match="timezone"):
        _request(created_at=dt.datetime(2025, 3, 1, 9, 30))


def test_ints_are_bounded_to_avro_int() -> None:
    """service_version beyond 32 bits is refused at construction, not at encode."""
    with pytest.raises(ValidationError):
        _request(service_version=2**31)


def test_models_are_frozen() -> None:
    """Envelope values cannot be changed after construction."""
    request = _request()
    with pytest.raises(ValidationError):
        request.purpose = "other"  # type: ignore[misc]  # the point of the test


def test_from_avro_of_a_misfit_dict_is_a_schema_mismatch() -> None:
    """A decoded dict that does not fit the model raises SchemaMismatchError (a CodecError)."""
    value = {**_request().to_avro(), "kind": "not-a-field"}
    with pytest.raises(SchemaMismatchError, match="InquiryRequest"):
        InquiryRequest.from_avro(value)


def test_utc_millis_floors_to_the_millisecond() -> None:
    """utc_millis keeps the millisecond and drops what is below it."""
    value = dt.datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=dt.UTC)
    assert utc_millis(value).microsecond == 999000


# --- headers ---------------------------------------------------------------------------------


def test_request_headers_carry_type_id_reply_to_and_trace() -> None:
    """A request's headers are type, inquiry id, reply-to and traceparent, as ASCII."""
    headers = dict(_request().headers())
    assert headers[HEADER_TYPE] == b"request"
    assert headers[HEADER_INQUIRY_ID] == str(INQUIRY_ID).encode()
    assert headers[HEADER_REPLY_TO] == b"c0ffee"
    assert headers["traceparent"].startswith(b"00-")


def test_outcome_headers_copy_reply_to() -> None:
    """An outcome carries its reply_to as the exchange-reply-to header."""
    outcome = samples(CODEC)["inquiry-outcome"]
    assert isinstance(outcome, InquiryOutcome)
    assert dict(outcome.headers())[HEADER_REPLY_TO] == b"c0ffee"
    assert dict(outcome.headers())[HEADER_TYPE] == b"outcome"


def test_dead_letter_survives_its_headers() -> None:
    """DeadLetter -> headers (+ the record key) -> DeadLetter is lossless."""
    letter = samples(CODEC)["dead-letter"]
    assert isinstance(letter, DeadLetter)
    again = DeadLetter.from_headers(letter.headers(), key=letter.original_key)
    assert again == letter


def test_dead_letter_headers_are_text() -> None:
    """Every DLQ header value is readable text (numbers and times as decimal)."""
    letter = samples(CODEC)["dead-letter"]
    assert isinstance(letter, DeadLetter)
    values = dict(letter.headers())
    assert values[HEADER_DLQ_REASON] == b"bad-framing"
    assert (
        values["exchange-dlq-source-timestamp"] == str(int(CREATED_AT.timestamp() * 1000)).encode()
    )


def test_dead_letter_from_incomplete_headers_is_a_schema_mismatch() -> None:
    """Missing required DLQ headers raise SchemaMismatchError."""
    with pytest.raises(SchemaMismatchError, match="DeadLetter"):
        DeadLetter.from_headers([(HEADER_DLQ_REASON, b"x")])


def test_agency_ref_subsystem_is_optional() -> None:
    """An AgencyRef without subsystem means the agency as a whole."""
    assert AgencyRef(agency="NOCR").subsystem is None
