"""Confluent framing through the registry client, against an in-memory registry (no server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from codec_samples import sample_store, samples

from exchange._codec import Codec
from exchange._errors import (
    FramingError,
    PayloadTooLargeError,
    RegistryError,
    SchemaMismatchError,
    UnknownSchemaError,
)
from exchange._models import InquiryOutcome, InquiryRequest
from exchange._registry import ConfluentCodec, SchemaRegistryClient
from exchange._wire import INQUIRY_OUTCOME, INQUIRY_REQUEST


class FakeRegistry:
    """The three Confluent REST calls the client makes, over a dict, counting requests."""

    def __init__(self) -> None:
        self.by_id: dict[int, str] = {}
        self.subjects: dict[tuple[str, str], int] = {}
        self.calls = 0
        self.fail_with: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.fail_with is not None:
            return httpx.Response(self.fail_with, json={"error_code": self.fail_with})
        parts = request.url.path.strip("/").removeprefix("api/").split("/")
        if request.method == "GET" and parts[:2] == ["schemas", "ids"]:
            text = self.by_id.get(int(parts[2]))
            if text is None:
                return httpx.Response(404, json={"error_code": 40403, "message": "not found"})
            return httpx.Response(200, json={"schema": text})
        text = json.loads(request.content)["schema"]
        key = (parts[1], text)
        if parts[-1] == "versions":
            if key not in self.subjects:
                self.subjects[key] = len(self.by_id) + 1
                self.by_id[self.subjects[key]] = text
            return httpx.Response(200, json={"id": self.subjects[key]})
        if key not in self.subjects:
            return httpx.Response(404, json={"error_code": 40403, "message": "not found"})
        return httpx.Response(200, json={"id": self.subjects[key], "subject": parts[1]})


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


def _confluent(fake: FakeRegistry, **options: Any) -> ConfluentCodec:
    client = SchemaRegistryClient("http://registry.test/api", transport=httpx.MockTransport(fake))
    return ConfluentCodec(Codec(sample_store()), client, **options)


async def test_round_trip_in_confluent_framing(fake: FakeRegistry) -> None:
    """encode gives 00 + 4-byte id + the same body as single-object; decode gives it back."""
    codec = _confluent(fake)
    request = samples(codec.codec)["inquiry-request"]
    data = await codec.encode_model(request)
    assert data[:5] == b"\x00\x00\x00\x00\x01"
    assert data[5:] == codec.codec.encode_model(request)[10:]
    assert await codec.decode_model(data, InquiryRequest) == request
    assert fake.subjects.popitem()[0][0] == INQUIRY_REQUEST  # record name strategy


async def test_ids_and_schemas_are_cached(fake: FakeRegistry) -> None:
    """One registration per schema and one fetch per id, however many records."""
    writer = _confluent(fake)
    outcome = samples(writer.codec)["inquiry-outcome"]
    records = [await writer.encode_model(outcome) for _ in range(5)]
    reader = _confluent(fake)
    for data in records:
        await reader.decode(data, reader=INQUIRY_OUTCOME)
    assert fake.calls == 2


async def test_unknown_id_is_unknown_schema(fake: FakeRegistry) -> None:
    """An id the registry does not know raises UnknownSchemaError."""
    with pytest.raises(UnknownSchemaError, match="404"):
        await _confluent(fake).decode(b"\x00\x00\x00\x00\x07" + b"\x00")


async def test_lookup_only_mode_refuses_unregistered_schemas(fake: FakeRegistry) -> None:
    """With auto_register off, a schema nobody registered raises UnknownSchemaError."""
    codec = _confluent(fake, auto_register=False)
    with pytest.raises(UnknownSchemaError):
        await codec.encode_model(samples(codec.codec)["inquiry-outcome"])


async def test_lookup_only_mode_finds_registered_schemas(fake: FakeRegistry) -> None:
    """With auto_register off, an already registered schema's id is used."""
    model = samples(Codec(sample_store()))["inquiry-outcome"]
    registered = await _confluent(fake).encode_model(model)
    assert await _confluent(fake, auto_register=False).encode_model(model) == registered


@pytest.mark.parametrize(("status", "retriable"), [(500, True), (503, True), (409, False)])
async def test_registry_refusals_are_registry_errors(
    fake: FakeRegistry, status: int, retriable: bool
) -> None:
    """Server errors are retriable RegistryErrors; refusals are not."""
    fake.fail_with = status
    codec = _confluent(fake)
    with pytest.raises(RegistryError) as caught:
        await codec.encode_model(samples(codec.codec)["inquiry-outcome"])
    assert caught.value.status == status
    assert caught.value.retriable is retriable


async def test_unreachable_registry_is_a_retriable_registry_error() -> None:
    """A transport failure becomes a retriable RegistryError."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = SchemaRegistryClient("http://registry.test", transport=httpx.MockTransport(refuse))
    codec = ConfluentCodec(Codec(sample_store()), client)
    with pytest.raises(RegistryError, match="unreachable") as caught:
        await codec.decode(b"\x00\x00\x00\x00\x01\x00")
    assert caught.value.retriable


async def test_malformed_confluent_records(fake: FakeRegistry) -> None:
    """Wrong marker, short header, oversize and wrong record each raise their typed error."""
    codec = _confluent(fake)
    data = await codec.encode_model(samples(codec.codec)["inquiry-request"])
    with pytest.raises(FramingError):
        await codec.decode(b"\xc3" + data[1:])
    with pytest.raises(FramingError):
        await codec.decode(data[:4])
    with pytest.raises(SchemaMismatchError):
        await codec.decode(data + b"\x00")
    with pytest.raises(SchemaMismatchError, match="InquiryOutcome"):
        await codec.decode_model(data, InquiryOutcome)
    small = ConfluentCodec(Codec(sample_store(), max_record_bytes=16), codec.registry)
    with pytest.raises(PayloadTooLargeError):
        await small.decode(data)
