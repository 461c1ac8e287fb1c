"""The compiled writer (Codec.encode_trusted) writes exactly fastavro's bytes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from codec_samples import sample_store, samples
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from exchange._avro_compiled import compile_writer
from exchange._codec import Codec, SchemaStore
from exchange._errors import SchemaMismatchError
from exchange.bench._bus_env import SCHEMAS

#: The envelopes the SDKs write on every inquiry: these must take the fast path.
COVERED = ("exchange.v1.InquiryRequest", "exchange.v1.InquiryResponse")
CODEC = Codec(sample_store())
SAMPLES = samples(CODEC)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_trusted_encoding_is_byte_identical(name: str) -> None:
    """Every envelope sample, given as raw values (ints for times, text for ids), encodes to
    the same bytes as the strict fastavro path, compiled or not."""
    data = CODEC.encode_model(SAMPLES[name])
    schema = CODEC.peek(data)
    assert CODEC.encode_trusted(schema, _raw_values(schema.definition, data[10:])) == data


def test_the_sdk_envelopes_are_compiled() -> None:
    """The request and response envelopes, and the outcome, take the compiled writer."""
    for name in (*COVERED, "exchange.v1.InquiryOutcome"):
        assert compile_writer(CODEC.store.get(name).definition) is not None, name


def test_every_compiled_schema_of_the_repository_writes_fastavros_bytes() -> None:
    """Random records of each .avsc the compiler covers come out byte for byte as fastavro's."""
    compiled = 0
    for schema in SchemaStore.from_directory(SCHEMAS):
        write = compile_writer(schema.definition)
        if write is None:
            continue
        compiled += 1
        for record in generate_many(schema.parsed, 20):
            out = io.BytesIO()
            schemaless_writer(out, schema.parsed, record)
            body = out.getvalue()
            assert write(_raw_values(schema.definition, body)) == body, schema.name
    assert compiled >= 10


def test_uncovered_schemas_compile_to_none() -> None:
    """Arrays, maps, wide unions and logical types it does not know are left to fastavro."""
    for kind in (
        {"type": "array", "items": "string"},
        {"type": "map", "values": "long"},
        ["null", "string", "long"],
        ["null", {"type": "int", "logicalType": "time-millis"}],
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
    ):
        definition = {"type": "record", "name": "R", "fields": [{"name": "f", "type": kind}]}
        assert compile_writer(definition) is None, kind


def test_a_value_that_does_not_fit_is_a_schema_mismatch() -> None:
    """A caller's bug (a missing field, a number for text) is a SchemaMismatchError."""
    data = CODEC.encode_model(SAMPLES["inquiry-request"])
    schema = CODEC.peek(data)
    raw = _raw_values(schema.definition, data[10:])
    with pytest.raises(SchemaMismatchError, match="InquiryRequest"):
        CODEC.encode_trusted(schema, {**raw, "purpose": 7})
    del raw["purpose"]
    with pytest.raises(SchemaMismatchError, match="InquiryRequest"):
        CODEC.encode_trusted(schema, raw)


def _raw_values(definition: Any, body: bytes) -> dict[str, Any]:
    """The record as raw values (logical types as ints and text), read by fastavro."""
    value = schemaless_reader(io.BytesIO(body), parse_schema(_strip(definition)))
    assert isinstance(value, dict)
    return value


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _strip(value) for key, value in node.items() if key != "logicalType"}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node
