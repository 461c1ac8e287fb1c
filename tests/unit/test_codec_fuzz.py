"""Hostile bytes: the decoder only ever raises CodecError subclasses, and returns quickly."""

from __future__ import annotations

import time

import pytest
from codec_samples import ROOT, sample_store, samples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange._codec import Codec
from exchange._errors import CodecError, SchemaMismatchError
from exchange._schema_store import Schema, SchemaStore

# Every schema in the repo (envelope and services) plus the test payload, so random bodies
# meet every type the bus decodes.
STORE = sample_store()
for _schema in SchemaStore.from_directory(ROOT / "schemas"):
    STORE.add(_schema)
CODEC = Codec(STORE, max_record_bytes=4096)
HEADERS = [schema.header for schema in STORE]
VALID = [CODEC.encode_model(model) for model in samples(CODEC).values()]

# A hang shows up as a blown deadline; generous, because the test machines are shared.
FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_codec_error(data: bytes) -> None:
    error: CodecError | None = None
    try:
        CODEC.decode(data)
    except CodecError as exc:
        error = exc
    assert error is None or (error.message and error.reason)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    """Arbitrary bytes decode or raise a CodecError, never anything else."""
    _decode_or_codec_error(data)


@FUZZ
@given(st.sampled_from(HEADERS), st.binary(max_size=600))
def test_known_fingerprint_with_random_body(header: bytes, body: bytes) -> None:
    """A valid header over a random body decodes or raises a CodecError."""
    _decode_or_codec_error(header + body)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_records(record: bytes, data: st.DataObject) -> None:
    """Valid records with bytes overwritten, cut or inserted decode or raise a CodecError."""
    mutated = bytearray(record)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(10, len(mutated) - 1))
        action = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set":
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del mutated[at:]
            break
        else:
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=9))
    _decode_or_codec_error(bytes(mutated))


HUGE = b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # zig-zag varint 2**63 - 1


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "long"},
        {
            "type": "array",
            "items": {
                "type": "record",
                "name": "One",
                "fields": [{"name": "b", "type": "boolean"}],
            },
        },
        {"type": "map", "values": "null"},
        "bytes",
        "string",
    ],
    ids=["array-of-long", "array-of-records", "map-of-null", "bytes", "string"],
)
def test_huge_declared_length_in_a_tiny_record_fails_fast(field_type: object) -> None:
    """A count or length of 2**63 in a 20-byte record is a SchemaMismatchError, at once.

    Timed in CPU seconds of this process, which a loaded machine does not inflate the way it
    does wall time; it takes microseconds, and a decoder that walks the declared count (or
    allocates for it) spends far more than the bound, if it returns at all.
    """
    schema = Schema.parse({"type": "record", "name": "H", "fields": [
        {"name": "f", "type": field_type}]})  # fmt: skip
    codec = Codec(SchemaStore([schema]))
    started = time.process_time()
    with pytest.raises(SchemaMismatchError):
        codec.decode(schema.header + HUGE + b"\x02\x04")
    assert time.process_time() - started < 1.0
