"""Optional Confluent framing through a Confluent-compatible schema registry (httpx, cached).

Wire format of this mode::

    offset  size  content
    0       1     00             Confluent marker
    1       4     schema id      big-endian, as the registry assigned it
    5       n     body           the record in Avro binary encoding

The writer's schema is registered under a subject (by default the record's full name, the
"record name strategy", because one ``out`` topic carries two record types) and the id the
registry returns is cached per subject and fingerprint; a reader fetches an unknown id once and
caches the parsed schema. Payloads nested in an envelope keep the single-object framing in this
mode too: providers decode them with the catalog's schemas, registry or not.

Tested against Apicurio Registry 3.0's Confluent-compatible API (``/apis/ccompat/v7``); any
server speaking the Confluent REST API for ``/subjects/{s}/versions`` and ``/schemas/ids/{id}``
should do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from exchange._codec import Codec, frame_confluent, unframe_confluent
from exchange._errors import RegistryError, UnknownSchemaError
from exchange._models import EnvelopeModel
from exchange._schema_store import Schema

__all__ = ["ConfluentCodec", "SchemaRegistryClient", "record_name_subject"]

M = TypeVar("M", bound=EnvelopeModel)

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_CONFLUENT_HEADER_SIZE = 5


def record_name_subject(schema: Schema) -> str:
    """The subject a schema is registered under: its full name (record name strategy)."""
    return schema.name


class SchemaRegistryClient:
    """A small async client of the Confluent schema registry REST API, with caches.

    ``base_url`` is the API root (for Apicurio: ``http://host:port/apis/ccompat/v7``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        auth: tuple[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            auth=auth,
            transport=transport,
            headers={"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE},
        )
        self._ids: dict[tuple[str, bytes], int] = {}
        self._schemas: dict[int, Schema] = {}

    async def register(self, subject: str, schema: Schema) -> int:
        """The id of ``schema`` under ``subject``, registering it if new (cached)."""
        key = (subject, schema.fingerprint)
        if key not in self._ids:
            body = {"schema": json.dumps(schema.definition), "schemaType": "AVRO"}
            answer = await self._call("POST", f"subjects/{quote(subject, safe='')}/versions", body)
            self._ids[key] = _int_field(answer, "id")
            self._schemas.setdefault(self._ids[key], schema)
        return self._ids[key]

    async def lookup(self, subject: str, schema: Schema) -> int:
        """The id of ``schema`` if already registered under ``subject``; never registers."""
        key = (subject, schema.fingerprint)
        if key not in self._ids:
            body = {"schema": json.dumps(schema.definition), "schemaType": "AVRO"}
            answer = await self._call("POST", f"subjects/{quote(subject, safe='')}", body)
            self._ids[key] = _int_field(answer, "id")
        return self._ids[key]

    async def schema_by_id(self, schema_id: int) -> Schema:
        """The parsed schema with this id (cached); :class:`UnknownSchemaError` if none."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            answer = await self._call("GET", f"schemas/ids/{schema_id}")
            text = answer.get("schema")
            if not isinstance(text, str):
                raise RegistryError(f"schema id {schema_id}: answer has no schema text")
            schema = Schema.parse(text, source=f"registry schema id {schema_id}")
            self._schemas[schema_id] = schema
        return schema

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RegistryError(f"schema registry unreachable: {exc!r}") from exc
        answer = _json(response)
        if response.is_success:
            return answer
        message = f"schema registry {method} /{path}: {response.status_code} {answer}"
        if response.status_code == 404:
            raise UnknownSchemaError(message)
        raise RegistryError(
            message, status=response.status_code, retriable=response.status_code >= 500
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {"text": response.text[:200]}
    return value if isinstance(value, dict) else {"value": value}


def _int_field(answer: Mapping[str, Any], name: str) -> int:
    value = answer.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RegistryError(f"schema registry answer has no integer {name!r}: {answer}")
    return value


class ConfluentCodec:
    """Encodes and decodes envelope records in the Confluent framing.

    Bodies are written and read by ``codec`` (its store supplies writer and reader schemas
    and its size limit applies); only the schema id comes from the registry.
    """

    def __init__(
        self,
        codec: Codec,
        registry: SchemaRegistryClient,
        *,
        subject_for: Callable[[Schema], str] = record_name_subject,
        auto_register: bool = True,
    ) -> None:
        self.codec = codec
        self.registry = registry
        self._subject_for = subject_for
        self._auto_register = auto_register

    async def encode(self, schema: Schema | str, datum: Mapping[str, Any]) -> bytes:
        """``00`` + schema id + body."""
        schema = schema if isinstance(schema, Schema) else self.codec.store.get(schema)
        body = self.codec.encode_body(schema, datum)
        subject = self._subject_for(schema)
        if self._auto_register:
            schema_id = await self.registry.register(subject, schema)
        else:
            schema_id = await self.registry.lookup(subject, schema)
        return frame_confluent(schema_id, body)

    async def decode(self, data: bytes, *, reader: Schema | str | None = None) -> dict[str, Any]:
        """Decode a Confluent-framed record, resolved to ``reader`` when given."""
        schema_id = unframe_confluent(data, max_record_bytes=self.codec.max_record_bytes)
        writer = await self.registry.schema_by_id(schema_id)
        return self.codec.decode_body(data, writer, reader=reader, offset=_CONFLUENT_HEADER_SIZE)

    async def encode_model(self, model: EnvelopeModel) -> bytes:
        """Encode an envelope model with the current schema of its record."""
        return await self.encode(model.AVRO_NAME, model.to_avro())

    async def decode_model(self, data: bytes, model: type[M]) -> M:
        """Decode a record that must be a ``model``."""
        return model.from_avro(await self.decode(data, reader=model.AVRO_NAME))
