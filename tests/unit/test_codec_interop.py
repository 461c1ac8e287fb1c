"""Interoperability with the Apache Avro reference library for Python (``avro``).

Our bodies decode with avro's DatumReader, and bodies avro writes decode with our codec once
framed. Only the body is exchanged: the Python ``avro`` package has no single-object framing,
and its canonical form of logical-typed primitives differs from the Java library's (which ours
follows), so fingerprints are not compared with it.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import avro.io
import avro.schema
import pytest
from codec_samples import EXAMPLE_PAYLOAD, sample_store, samples

from exchange._codec import Codec
from exchange._schema_store import Schema

CODEC = Codec(sample_store())
SAMPLES = samples(CODEC)


def _avro_schema(schema: Schema) -> Any:
    return avro.schema.make_avsc_object(dict(schema.definition))


def _normalised(value: Any) -> Any:
    """avro returns uuid logical types as text; compare them as text."""
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    return str(value) if isinstance(value, uuid.UUID) else value


def _avro_read(schema: Schema, body: bytes) -> Any:
    decoder = avro.io.BinaryDecoder(io.BytesIO(body))
    return avro.io.DatumReader(_avro_schema(schema)).read(decoder)


def _avro_write(schema: Schema, value: Any) -> bytes:
    out = io.BytesIO()
    avro.io.DatumWriter(_avro_schema(schema)).write(value, avro.io.BinaryEncoder(out))
    return out.getvalue()


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_our_bodies_decode_with_apache_avro(stem: str) -> None:
    """The body after our 10-byte header is plain Avro binary the reference reader accepts."""
    data = CODEC.encode_model(SAMPLES[stem])
    schema = CODEC.peek(data)
    assert _avro_read(schema, data[10:]) == _normalised(CODEC.decode(data))


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_apache_avro_bodies_decode_with_ours(stem: str) -> None:
    """A body avro writes, framed with C3 01 + fingerprint, decodes to the same record."""
    model = SAMPLES[stem]
    schema = CODEC.store.get(model.AVRO_NAME)
    body = _avro_write(schema, _normalised(model.to_avro()))
    assert body == CODEC.encode_body(schema, model.to_avro())
    assert CODEC.decode_model(schema.header + body, type(model)) == model


def test_nested_payload_decodes_with_apache_avro() -> None:
    """The payload inside a request is itself framed Avro the reference reader accepts."""
    request = CODEC.decode(CODEC.encode_model(SAMPLES["inquiry-request"]))
    payload = request["payload"]
    schema = CODEC.peek(payload)
    assert schema.name == EXAMPLE_PAYLOAD
    assert _avro_read(schema, payload[10:]) == CODEC.decode(payload)
