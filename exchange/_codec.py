"""The Avro codec of the bus: pure, no I/O beyond reading ``.avsc`` files at start.

Wire format (``docs/wire-format.md`` has the full account)::

    offset  size  content
    0       2     C3 01          single-object marker (Avro specification, format version 1)
    2       8     fingerprint    CRC-64-AVRO of the writer schema's Parsing Canonical Form,
                                 little-endian
    10      n     body           the record in Avro binary encoding, nothing after it

The fingerprint names the writer schema; the reader looks it up in a :class:`SchemaStore`
loaded from the ``.avsc`` files of the envelope and of every service, so no registry server is
needed. Payloads nested in an envelope (``payload: bytes``) use the same framing, so they name
their own schema too. The optional Confluent framing (``00`` + 4-byte big-endian schema id) is
in :mod:`exchange._registry`; the helpers here frame and unframe it without I/O.

Decoding untrusted bytes checks, in this order: the size limit (:class:`PayloadTooLargeError`),
the marker and header length (:class:`FramingError`), the fingerprint
(:class:`UnknownSchemaError`), the body, including bytes left after it
(:class:`SchemaMismatchError`). Schemas that would let a few bytes cost unbounded time or stack
(recursive types, arrays of items that encode in zero bytes) are refused when loaded.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any, TypeVar

from fastavro import schemaless_reader, schemaless_writer

from exchange._avro_compiled import Writer, compile_writer
from exchange._errors import FramingError, PayloadTooLargeError, SchemaMismatchError
from exchange._models import EnvelopeModel
from exchange._schema_store import Schema, SchemaStore, canonical_form, crc64_avro, fingerprint
from exchange._wire import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "Codec",
    "Schema",
    "SchemaStore",
    "canonical_form",
    "crc64_avro",
    "fingerprint",
    "frame_confluent",
    "unframe_confluent",
]

M = TypeVar("M", bound=EnvelopeModel)

DEFAULT_MAX_RECORD_BYTES = 1_048_576
_HEADER_SIZE = len(SINGLE_OBJECT_MAGIC) + 8
_CONFLUENT_HEADER = struct.Struct(">cI")

# --- Encoding and decoding ----------------------------------------------------------------------


class Codec:
    """Encodes and decodes single-object framed records with the schemas of a store."""

    def __init__(
        self, store: SchemaStore, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        self.store = store
        self.max_record_bytes = max_record_bytes
        # Compiled once per schema (None: not covered, fastavro writes it).
        self._writers: dict[bytes, Writer | None] = {}

    def encode(self, schema: Schema | str, datum: Mapping[str, Any]) -> bytes:
        """``C3 01`` + fingerprint + body; :class:`SchemaMismatchError` if ``datum`` misfits."""
        schema = self._schema(schema)
        out = io.BytesIO()
        out.write(schema.header)
        self._write_body(out, schema, datum)
        return self._within_limit(out.getvalue(), schema)

    def encode_trusted(self, schema: Schema | str, datum: Mapping[str, Any]) -> bytes:
        """:meth:`encode` for a record the caller built itself from values it checked (the
        SDKs' envelopes): no strict per-field check, and a writer compiled once per schema
        (:mod:`exchange._avro_compiled`) where it covers the schema. Logical-typed fields are
        given as their underlying values (epoch milliseconds, uuid text). Same bytes."""
        schema = self._schema(schema)
        write = self._writers.get(schema.fingerprint, _UNSET)
        if write is _UNSET:
            write = self._writers[schema.fingerprint] = compile_writer(schema.definition)
        if write is None:
            out = io.BytesIO()
            out.write(schema.header)
            self._write_body(out, schema, datum, strict=False)
            return self._within_limit(out.getvalue(), schema)
        try:
            body = write(datum)
        except Exception as exc:  # a caller's bug: say which record did not fit
            raise SchemaMismatchError(f"value does not fit {schema.name}: {exc!r}") from exc
        return self._within_limit(schema.header + body, schema)

    def encode_body(self, schema: Schema | str, datum: Mapping[str, Any]) -> bytes:
        """The bare Avro body, without framing (for the Confluent framing and for tests)."""
        schema = self._schema(schema)
        out = io.BytesIO()
        self._write_body(out, schema, datum)
        return self._within_limit(out.getvalue(), schema)

    def peek(self, data: bytes) -> Schema:
        """The writer schema a record names, without decoding its body."""
        self._check_size(data)
        return self._writer_of(data)

    def decode(self, data: bytes, *, reader: Schema | str | None = None) -> dict[str, Any]:
        """Decode a single-object framed record to fastavro's plain values.

        With ``reader``, the record must be that record (same full name or an alias) and is
        resolved from its writer schema to the reader schema (schema evolution).
        """
        self._check_size(data)
        writer = self._writer_of(data)
        return self._read_body(data, _HEADER_SIZE, writer, self._reader(reader, writer))

    def decode_body(
        self, body: bytes, writer: Schema, *, reader: Schema | str | None = None, offset: int = 0
    ) -> dict[str, Any]:
        """Decode a bare body written with ``writer`` (the Confluent framing uses this)."""
        self._check_size(body)
        return self._read_body(body, offset, writer, self._reader(reader, writer))

    def encode_model(self, model: EnvelopeModel) -> bytes:
        """Encode an envelope model with the latest schema of its record."""
        return self.encode(model.AVRO_NAME, model.to_avro())

    def decode_model(self, data: bytes, model: type[M]) -> M:
        """Decode a record that must be a ``model``, resolved to the latest schema of it."""
        return model.from_avro(self.decode(data, reader=model.AVRO_NAME))

    # -- internals -------------------------------------------------------------------------------

    def _schema(self, schema: Schema | str) -> Schema:
        return schema if isinstance(schema, Schema) else self.store.get(schema)

    def _reader(self, reader: Schema | str | None, writer: Schema) -> Schema | None:
        if reader is None:
            return None
        reader = self._schema(reader)
        if writer.name != reader.name and writer.name not in reader.aliases:
            raise SchemaMismatchError(f"expected a {reader.name} record, got {writer.name}")
        # Same canonical form: nothing to resolve, and fastavro reads faster without a reader.
        return None if reader.fingerprint == writer.fingerprint else reader

    @staticmethod
    def _write_body(
        out: io.BytesIO, schema: Schema, datum: Mapping[str, Any], *, strict: bool = True
    ) -> None:
        try:
            schemaless_writer(out, schema.parsed, datum, strict=strict)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, …
            raise SchemaMismatchError(f"value does not fit {schema.name}: {exc}") from exc

    def _within_limit(self, data: bytes, schema: Schema) -> bytes:
        if len(data) > self.max_record_bytes:
            raise PayloadTooLargeError(
                f"{schema.name} record is {len(data)} bytes, over the limit of "
                f"{self.max_record_bytes}"
            )
        return data

    def _check_size(self, data: bytes) -> None:
        if len(data) > self.max_record_bytes:
            raise PayloadTooLargeError(
                f"record is {len(data)} bytes, over the limit of {self.max_record_bytes}"
            )

    def _writer_of(self, data: bytes) -> Schema:
        if len(data) < _HEADER_SIZE:
            raise FramingError(f"record is {len(data)} bytes, shorter than the 10-byte header")
        if data[:2] != SINGLE_OBJECT_MAGIC:
            raise FramingError(
                f"record starts with {bytes(data[:2]).hex()}, not the single-object marker c301"
            )
        return self.store.by_fingerprint(data[2:_HEADER_SIZE])

    @staticmethod
    def _read_body(
        data: bytes, offset: int, writer: Schema, reader: Schema | None
    ) -> dict[str, Any]:
        buffer = io.BytesIO(data)
        buffer.seek(offset)
        try:
            value = schemaless_reader(
                buffer, writer.parsed, reader.parsed if reader is not None else None
            )
        except Exception as exc:  # any failure on untrusted bytes means: not this schema
            raise SchemaMismatchError(
                f"body does not decode as {writer.name}: {type(exc).__name__}: {exc}"
            ) from exc
        left = len(data) - buffer.tell()
        if left:
            raise SchemaMismatchError(f"{left} bytes left after the {writer.name} body")
        if not isinstance(value, dict):  # only records are admitted to the store
            raise SchemaMismatchError(f"{writer.name} body is not a record")
        return value


_UNSET: Any = object()


# --- Confluent framing (pure part; the registry client is in exchange._registry) ----------------


def frame_confluent(schema_id: int, body: bytes) -> bytes:
    """``00`` + 4-byte big-endian schema id + body."""
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise SchemaMismatchError(f"schema id {schema_id} does not fit in 4 bytes")
    return _CONFLUENT_HEADER.pack(CONFLUENT_MAGIC, schema_id) + body


def unframe_confluent(data: bytes, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> int:
    """The schema id of a Confluent-framed record (its body starts at offset 5)."""
    if len(data) > max_record_bytes:
        raise PayloadTooLargeError(
            f"record is {len(data)} bytes, over the limit of {max_record_bytes}"
        )
    if len(data) < _CONFLUENT_HEADER.size:
        raise FramingError(f"record is {len(data)} bytes, shorter than the 5-byte header")
    magic, schema_id = _CONFLUENT_HEADER.unpack_from(data)
    if magic != CONFLUENT_MAGIC:
        raise FramingError(f"record starts with {magic.hex()}, not the Confluent marker 00")
    return int(schema_id)
