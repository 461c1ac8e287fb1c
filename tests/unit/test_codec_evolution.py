"""Schema evolution: records written with an older or newer schema read with today's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from codec_samples import sample_store, samples

from exchange._codec import Codec
from exchange._errors import SchemaMismatchError
from exchange._models import InquiryOutcome, InquiryRequest, OutcomeKind, RejectReason
from exchange._schema_store import Schema
from exchange._wire import INQUIRY_OUTCOME, INQUIRY_REQUEST


@pytest.fixture
def codec() -> Codec:
    return Codec(sample_store())


def _variant(codec: Codec, name: str) -> dict[str, Any]:
    return copy.deepcopy(dict(codec.store.get(name).definition))


def _enum(node: Any, name: str) -> dict[str, Any] | None:
    """The first definition of enum ``name`` inside a schema's JSON."""
    if isinstance(node, dict) and node.get("type") == "enum" and node.get("name") == name:
        return node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found = _enum(child, name)
        if found is not None:
            return found
    return None


def test_older_writer_without_a_field_reads_with_its_default(codec: Codec) -> None:
    """A request written before reply_to existed reads with reply_to = None."""
    older = _variant(codec, INQUIRY_REQUEST)
    older["fields"] = [f for f in older["fields"] if f["name"] != "reply_to"]
    writer = codec.store.add(older, current=False)
    request = samples(codec)["inquiry-request"]
    value = {k: v for k, v in request.to_avro().items() if k != "reply_to"}
    data = codec.encode(writer, value)

    decoded = codec.decode_model(data, InquiryRequest)
    assert decoded == request.model_copy(update={"reply_to": None})


def test_newer_writer_with_an_extra_field_reads_without_it(codec: Codec) -> None:
    """A field a newer writer added is skipped by today's reader."""
    newer = _variant(codec, INQUIRY_REQUEST)
    newer["fields"].append({"name": "priority", "type": "int", "default": 0, "doc": "new"})
    writer = codec.store.add(newer, current=False)  # known to the reader, not its own schema
    request = samples(codec)["inquiry-request"]
    data = codec.encode(writer, {**request.to_avro(), "priority": 7})

    assert codec.decode_model(data, InquiryRequest) == request


@pytest.mark.parametrize(
    ("enum_name", "field", "new_symbol", "expected"),
    [
        ("OutcomeKind", "kind", "CANCELLED", OutcomeKind.FAILED),
        ("RejectReason", "reject_reason", "QUOTA_EXCEEDED", RejectReason.OTHER),
    ],
)
def test_unknown_enum_symbol_reads_as_the_enum_default(
    codec: Codec, enum_name: str, field: str, new_symbol: str, expected: str
) -> None:
    """A symbol added by a newer writer reads as the enum's declared default."""
    newer = _variant(codec, INQUIRY_OUTCOME)
    enum = _enum(newer, enum_name)
    assert enum is not None
    enum["symbols"].append(new_symbol)
    writer = codec.store.add(Schema.parse(newer), current=False)
    outcome = samples(codec)["inquiry-outcome"].to_avro()
    data = codec.encode(writer, {**outcome, field: new_symbol})

    assert codec.decode(data, reader=INQUIRY_OUTCOME)[field] == expected
    assert getattr(codec.decode_model(data, InquiryOutcome), field) == expected


def test_incompatible_writer_is_a_mismatch(codec: Codec) -> None:
    """A writer whose field type cannot be promoted to the reader's raises SchemaMismatchError."""
    older = _variant(codec, INQUIRY_REQUEST)
    for f in older["fields"]:
        if f["name"] == "service_version":
            f["type"] = "string"
    writer = codec.store.add(older, current=False)
    value = {**samples(codec)["inquiry-request"].to_avro(), "service_version": "one"}
    data = codec.encode(writer, value)

    with pytest.raises(SchemaMismatchError, match="InquiryRequest"):
        codec.decode(data, reader=INQUIRY_REQUEST)


def test_without_a_reader_the_writer_schema_is_used(codec: Codec) -> None:
    """decode() without reader returns the values as written, extra fields included."""
    newer = _variant(codec, INQUIRY_REQUEST)
    newer["fields"].append({"name": "priority", "type": "int", "default": 0, "doc": "new"})
    writer = codec.store.add(newer, current=False)
    data = codec.encode(writer, {**samples(codec)["inquiry-request"].to_avro(), "priority": 7})

    assert codec.decode(data)["priority"] == 7
