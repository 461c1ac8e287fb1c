"""The codec: framing, fingerprints, the schema store, and one typed error per malformation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from codec_samples import (
    ENVELOPE_DIR,
    EXAMPLE_PAYLOAD,
    ROOT,
    example_payload,
    sample_store,
    samples,
)
from fastavro.schema import fingerprint as fastavro_fingerprint

from exchange._codec import Codec, frame_confluent, unframe_confluent
from exchange._errors import (
    CodecError,
    FramingError,
    PayloadTooLargeError,
    SchemaError,
    SchemaMismatchError,
    UnknownSchemaError,
)
from exchange._schema_store import (
    CRC64_AVRO_EMPTY,
    Schema,
    SchemaStore,
    canonical_form,
    crc64_avro,
    fingerprint,
)
from exchange._wire import INQUIRY_OUTCOME, INQUIRY_REQUEST

# Test vectors published with the Avro specification (share/test/data/schema-tests.txt in
# apache/avro): schema text, then the signed 64-bit CRC-64-AVRO of its canonical form.
AVRO_SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('{"type":"null"}', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"string"', -8142146995180207161),
    ('{"type":"fixed","name":"foo","size":15}', 1756455273707447556),
    ('["int","boolean"]', 5392556393470105090),
    ('{"type":"record","name":"foo","fields":[]}', -4824392279771201922),
    (
        '{"type":"record","name":"foo","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{"name":"PigValue","type":"record",'
        '"fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]

TINY = {
    "type": "record",
    "name": "Tiny",
    "namespace": "t",
    "fields": [{"name": "n", "type": "long"}],
}


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(sample_store())


@pytest.fixture(scope="module")
def request_bytes(codec: Codec) -> bytes:
    return codec.encode_model(samples(codec)["inquiry-request"])


@pytest.mark.parametrize(("schema", "expected"), AVRO_SPEC_VECTORS)
def test_crc64_avro_matches_the_specification_vectors(schema: str, expected: int) -> None:
    """Our CRC-64-AVRO of the canonical form equals the Avro project's published values."""
    assert crc64_avro(canonical_form(schema).encode()) == expected & 0xFFFF_FFFF_FFFF_FFFF
    assert fingerprint(schema) == (expected & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")


def test_crc64_of_nothing_is_the_empty_constant() -> None:
    """The fingerprint of zero bytes is the constant the specification names."""
    assert crc64_avro(b"") == CRC64_AVRO_EMPTY == 0xC15D213AA4D7A795


def test_fingerprints_agree_with_fastavro_for_every_schema_in_the_repo() -> None:
    """Our fingerprint bytes are fastavro's for every .avsc shipped (envelope and services)."""
    for schema in SchemaStore.from_directory(ROOT / "schemas"):
        assert schema.fingerprint.hex() == fastavro_fingerprint(
            schema.canonical_form, "CRC-64-AVRO"
        )


def test_logical_types_leave_the_canonical_form() -> None:
    """A logical-typed primitive canonicalises to the bare primitive, as the Java library does."""
    form = canonical_form({"type": "record", "name": "r", "fields": [
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": "x"},
    ]})  # fmt: skip
    assert form == '{"name":"r","type":"record","fields":[{"name":"t","type":"long"}]}'


def test_encoded_record_starts_with_marker_and_fingerprint(codec: Codec) -> None:
    """Bytes 0-1 are C3 01 and bytes 2-9 the writer schema's fingerprint, little-endian."""
    data = example_payload(codec)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.store.get(EXAMPLE_PAYLOAD).fingerprint


def test_round_trip_gives_the_same_values() -> None:
    """decode(encode(v)) == v for a plain dict value."""
    codec = Codec(SchemaStore([Schema.parse(TINY)]))
    value = {"n": -(2**62)}
    assert codec.decode(codec.encode("t.Tiny", value)) == value


def test_peek_names_the_writer_schema_without_decoding(codec: Codec, request_bytes: bytes) -> None:
    """peek() returns the writer schema of a record."""
    assert codec.peek(request_bytes).name == INQUIRY_REQUEST


def test_decode_with_a_reader_of_another_record_is_a_mismatch(
    codec: Codec, request_bytes: bytes
) -> None:
    """Asking for an outcome and getting a request raises SchemaMismatchError naming both."""
    with pytest.raises(SchemaMismatchError, match=r"InquiryOutcome.*InquiryRequest"):
        codec.decode(request_bytes, reader=INQUIRY_OUTCOME)


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda b: b"", FramingError),
        (lambda b: b[:9], FramingError),
        (lambda b: b"\xc3\x02" + b[2:], FramingError),
        (lambda b: b"\x00" + b[1:], FramingError),
        (lambda b: b[:2] + bytes(8) + b[10:], UnknownSchemaError),
        (lambda b: b[:10], SchemaMismatchError),
        (lambda b: b[:-1], SchemaMismatchError),
        (lambda b: b + b"\x00", SchemaMismatchError),
        (lambda b: b[:10] + b"\x01" + b[11:], SchemaMismatchError),
    ],
    ids=[
        "empty",
        "truncated-header",
        "wrong-version",
        "wrong-magic",
        "unknown-fingerprint",
        "no-body",
        "truncated-body",
        "trailing-byte",
        "corrupt-length",
    ],
)
def test_malformed_records_raise_their_typed_error(
    codec: Codec, request_bytes: bytes, mangle: Any, error: type[CodecError]
) -> None:
    """Each malformation gives its own CodecError subclass, with its DLQ reason code."""
    with pytest.raises(error) as caught:
        codec.decode(mangle(request_bytes))
    assert caught.value.reason == error.reason
    assert caught.value.message


def test_size_limit_is_checked_before_anything_else(request_bytes: bytes) -> None:
    """A record over the limit is PayloadTooLargeError even when its framing is also bad."""
    small = Codec(sample_store(), max_record_bytes=64)
    with pytest.raises(PayloadTooLargeError, match="over the limit of 64"):
        small.decode(b"\x00" * 65)
    with pytest.raises(PayloadTooLargeError):
        small.decode(request_bytes)


def test_encoding_over_the_limit_is_refused() -> None:
    """A writer cannot produce a record the readers would refuse."""
    small = Codec(sample_store(), max_record_bytes=64)
    with pytest.raises(PayloadTooLargeError):
        small.encode(EXAMPLE_PAYLOAD, {"national_id": "x" * 64, "birth_date": 1, "last_name": ""})


@pytest.mark.parametrize(
    "value",
    [
        {"national_id": "1", "birth_date": 1},
        {"national_id": 1, "birth_date": 1, "last_name": "x"},
        {"national_id": "1", "birth_date": 1, "last_name": "x", "extra": 1},
    ],
    ids=["missing-field", "wrong-type", "unknown-field"],
)
def test_encoding_a_value_that_misfits_is_a_mismatch(codec: Codec, value: dict[str, Any]) -> None:
    """fastavro's errors on encode come out as SchemaMismatchError."""
    with pytest.raises(SchemaMismatchError, match=EXAMPLE_PAYLOAD):
        codec.encode(EXAMPLE_PAYLOAD, value)


def test_unknown_schema_name_on_encode(codec: Codec) -> None:
    """Encoding with a name nobody loaded raises UnknownSchemaError."""
    with pytest.raises(UnknownSchemaError, match=r"no\.such\.Record"):
        codec.encode("no.such.Record", {})


# --- the schema store ---------------------------------------------------------------------


def _write(folder: Path, name: str, schema: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(schema))


def _tiny(doc: str, *extra: dict[str, Any]) -> dict[str, Any]:
    fields = [{"name": "n", "type": "long"}, *extra]
    return {"type": "record", "name": "Tiny", "namespace": "t", "doc": doc, "fields": fields}


def test_store_loads_recursively_and_latest_revision_wins(tmp_path: Path) -> None:
    """Revision 10 loads after revision 2, so get() gives it; every revision stays readable."""
    extra = {"name": "m", "type": ["null", "string"], "default": None}
    _write(tmp_path / "a" / "b", "request-2.avsc", _tiny("two", extra))
    _write(tmp_path / "a" / "b", "request-10.avsc", _tiny("ten", extra, {**extra, "name": "o"}))
    _write(tmp_path / "a" / "b", "request-1.avsc", _tiny("one"))
    store = SchemaStore.from_directory(tmp_path)
    assert [s.definition["doc"] for s in store.versions("t.Tiny")] == ["one", "two", "ten"]
    assert store.get("t.Tiny").definition["doc"] == "ten"
    assert len(store) == 3
    assert "t.Tiny" in store


def test_same_canonical_form_twice_is_one_entry(tmp_path: Path) -> None:
    """Docs do not change the fingerprint: the first file loaded stays the entry."""
    _write(tmp_path, "a.avsc", _tiny("first"))
    _write(tmp_path, "b.avsc", _tiny("second"))
    store = SchemaStore.from_directory(tmp_path)
    assert len(store) == 1
    assert store.get("t.Tiny").definition["doc"] == "first"


def test_envelope_folder_holds_exactly_the_five_records() -> None:
    """schemas/envelope has one self-contained file per top-level envelope record."""
    names = SchemaStore.from_directory(ENVELOPE_DIR).names()
    assert names == [
        "exchange.v1.AuditRecord",
        "exchange.v1.DeadLetter",
        "exchange.v1.InquiryOutcome",
        "exchange.v1.InquiryRequest",
        "exchange.v1.InquiryResponse",
    ]


def _all_fields(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [f for branch in node for f in _all_fields(branch)]
    if not isinstance(node, dict):
        return []
    fields = list(node.get("fields", []))
    inner = [f["type"] for f in fields] + [node.get("items"), node.get("values")]
    return fields + [f for t in inner if t is not None for f in _all_fields(t)]


def test_every_envelope_field_is_documented() -> None:
    """Every field of every envelope record, nested ones included, has a non-empty doc."""
    for schema in SchemaStore.from_directory(ENVELOPE_DIR):
        undocumented = [f["name"] for f in _all_fields(schema.definition) if not f.get("doc")]
        assert undocumented == [], schema.name


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not a valid Avro schema"),
        ('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "Nope"}]}', "valid"),
        ('"string"', "named record"),
        (
            '{"type": "record", "name": "N", "fields": [{"name": "n", "type": ["null", "N"]}]}',
            "recursive type N",
        ),
        (
            '{"type": "record", "name": "Z", "fields": '
            '[{"name": "z", "type": {"type": "array", "items": "null"}}]}',
            "zero-byte items",
        ),
        (
            '{"type": "record", "name": "E", "fields": [{"name": "z", "type": {"type": "array", '
            '"items": {"type": "record", "name": "Empty", "fields": []}}}]}',
            "zero-byte items",
        ),
    ],
    ids=["bad-json", "unknown-type", "not-a-record", "recursive", "null-array", "empty-records"],
)
def test_unusable_schema_files_raise_schema_error(tmp_path: Path, text: str, match: str) -> None:
    """Invalid or unsafe-to-decode schemas are refused at load, naming the file."""
    (tmp_path / "bad.avsc").write_text(text)
    with pytest.raises(SchemaError, match=match) as caught:
        SchemaStore.from_directory(tmp_path)
    assert "bad.avsc" in caught.value.message


def test_missing_folder_is_a_schema_error(tmp_path: Path) -> None:
    """Loading a folder that does not exist raises SchemaError."""
    with pytest.raises(SchemaError, match="no such schema folder"):
        SchemaStore.from_directory(tmp_path / "absent")


def test_schema_parse_reads_aliases_as_full_names() -> None:
    """A reader's aliases resolve against its namespace."""
    schema = Schema.parse({**TINY, "aliases": ["Old", "x.Older"]})
    assert schema.aliases == {"t.Old", "x.Older"}


# --- Confluent framing (pure part) ------------------------------------------------------------


def test_confluent_framing_round_trip() -> None:
    """00 + 4-byte big-endian id + body, and the id read back."""
    framed = frame_confluent(258, b"body")
    assert framed == b"\x00\x00\x00\x01\x02body"
    assert unframe_confluent(framed) == 258


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"\x00\x00\x00", FramingError), (b"\xc3\x01\x00\x00\x00\x00", FramingError)],
    ids=["short", "wrong-magic"],
)
def test_confluent_framing_errors(data: bytes, error: type[CodecError]) -> None:
    """A short or wrongly marked Confluent record is a FramingError."""
    with pytest.raises(error):
        unframe_confluent(data)


def test_confluent_size_limit() -> None:
    """The size limit applies to the Confluent framing too."""
    with pytest.raises(PayloadTooLargeError):
        unframe_confluent(b"\x00" * 11, max_record_bytes=10)
