"""Encoding of one inquiry's state for the compacted state changelog (``<prefix>.state``).

Record layout: key = the inquiry id (UTF-8); value = a record of :data:`PENDING_SCHEMA` (the
whole inquiry without its payload) or :data:`SETTLED_SCHEMA` (the mark kept until retention
ends) in Avro single-object encoding: ``C3 01``, the schema's 8-byte little-endian
CRC-64-AVRO fingerprint, then the Avro binary body (Avro 1.11 spec, "Single object
encoding"); the fingerprint tells the two apart. A tombstone (value ``None``) removes the
inquiry, so log compaction keeps the table bounded.

Times are longs in milliseconds since the epoch, written without the ``timestamp-millis``
logical type so decoding yields ints.

Revisions: :data:`PENDING_SCHEMA` is revision 2 (adds ``request_signature``, the requester's
signature in compact form, see :mod:`exchange._audit_signature`). Values written with
revision 1 (:data:`PENDING_SCHEMA_1`, before the field) are still read, as pending inquiries
without a signature, so a worker restored from an older changelog loses nothing. Each
revision is told apart by its fingerprint; new fields go last with a null default. The field
costs a pending inquiry's value 1 byte unsigned (the null branch) and 76 bytes signed (branch,
2-byte length, 73 bytes).
"""

from __future__ import annotations

import io
from typing import Any, Final

import fastavro
import fastavro.schema

from exchange._errors import FramingError, SchemaMismatchError, UnknownSchemaError
from exchange._state import InquiryRecord, InquiryState, Phase, Settled

__all__ = [
    "PENDING_SCHEMA",
    "PENDING_SCHEMA_1",
    "SETTLED_SCHEMA",
    "InquiryStateCodec",
    "decode_state",
    "encode_state",
]

_NS = "exchange.state"
_OPT_STR: Final = ["null", "string"]

#: Revision 1 of :data:`PENDING_SCHEMA` (no ``request_signature``): read, never written.
PENDING_SCHEMA_1: Final[dict[str, Any]] = {
    "type": "record",
    "name": "Pending",
    "namespace": _NS,
    "doc": "A routed inquiry waiting for its answer, without its payload.",
    "fields": [
        {"name": "inquiry_id", "type": "string"},
        {"name": "requester_agency", "type": "string"},
        {"name": "requester_subsystem", "type": _OPT_STR},
        {"name": "provider_agency", "type": "string"},
        {"name": "provider_subsystem", "type": _OPT_STR},
        {"name": "service_code", "type": "string"},
        {"name": "service_version", "type": "int"},
        {"name": "purpose", "type": "string"},
        {"name": "created_at_ms", "type": "long"},
        {"name": "deadline_ms", "type": "long"},
        {"name": "received_at_ms", "type": "long"},
        {"name": "case_reference", "type": _OPT_STR},
        {"name": "end_user_id", "type": _OPT_STR},
        {"name": "subject_kind", "type": _OPT_STR},
        {"name": "subject_id", "type": _OPT_STR},
        {"name": "reply_to", "type": _OPT_STR},
        {"name": "trace_parent", "type": _OPT_STR},
    ],
}

PENDING_SCHEMA: Final[dict[str, Any]] = {
    **PENDING_SCHEMA_1,
    "fields": [
        *PENDING_SCHEMA_1["fields"],
        {"name": "request_signature", "type": ["null", "bytes"], "default": None},
    ],
}

SETTLED_SCHEMA: Final[dict[str, Any]] = {
    "type": "record",
    "name": "Settled",
    "namespace": _NS,
    "doc": "What is remembered of a settled inquiry until its retention ends.",
    "fields": [
        {"name": "inquiry_id", "type": "string"},
        {
            "name": "phase",
            "type": {
                "type": "enum",
                "name": "SettledPhase",
                "symbols": ["ANSWERED", "FAILED", "TIMED_OUT", "REJECTED"],
            },
        },
        {"name": "requester_agency", "type": "string"},
        {"name": "provider_agency", "type": "string"},
        {"name": "service_code", "type": "string"},
        {"name": "service_version", "type": "int"},
        {"name": "settled_at_ms", "type": "long"},
    ],
}


def _header(schema: dict[str, Any]) -> bytes:
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    # fastavro prints the CRC-64-AVRO value's bytes in little-endian order, as framed.
    return b"\xc3\x01" + bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


_PENDING = fastavro.parse_schema(PENDING_SCHEMA)
_PENDING_1 = fastavro.parse_schema(PENDING_SCHEMA_1)
_SETTLED = fastavro.parse_schema(SETTLED_SCHEMA)
_PENDING_HEADER = _header(PENDING_SCHEMA)
_PENDING_1_HEADER = _header(PENDING_SCHEMA_1)
_SETTLED_HEADER = _header(SETTLED_SCHEMA)
_PENDING_FIELDS = tuple(InquiryRecord.__dataclass_fields__)
_SETTLED_FIELDS = tuple(Settled.__dataclass_fields__)


def encode_state(state: InquiryState) -> bytes:
    """The changelog value for *state*."""
    out = io.BytesIO()
    if isinstance(state, InquiryRecord):
        out.write(_PENDING_HEADER)
        fastavro.schemaless_writer(out, _PENDING, {n: getattr(state, n) for n in _PENDING_FIELDS})
    else:
        fields = {n: getattr(state, n) for n in _SETTLED_FIELDS}
        fields["phase"] = state.phase.value
        out.write(_SETTLED_HEADER)
        fastavro.schemaless_writer(out, _SETTLED, fields)
    return out.getvalue()


def decode_state(value: bytes) -> InquiryState:
    """The state a changelog value holds; raises a :class:`CodecError` for foreign bytes."""
    if len(value) < 10 or value[:2] != b"\xc3\x01":
        raise FramingError("state changelog value lacks the single-object header")
    header, body = value[:10], io.BytesIO(value[10:])
    try:
        if header == _PENDING_HEADER:
            return InquiryRecord(**_read(body, _PENDING))
        if header == _PENDING_1_HEADER:
            return InquiryRecord(**_read(body, _PENDING_1))
        if header == _SETTLED_HEADER:
            fields = _read(body, _SETTLED)
            fields["phase"] = Phase(fields["phase"])
            return Settled(**fields)
    except (EOFError, ValueError, TypeError, KeyError) as exc:
        raise SchemaMismatchError(f"state changelog value does not decode: {exc}") from exc
    raise UnknownSchemaError(f"state changelog value names unknown schema {header[2:].hex()}")


def _read(body: io.BytesIO, schema: Any) -> dict[str, Any]:
    record = fastavro.schemaless_reader(body, schema, None)
    if not isinstance(record, dict):  # a record schema always yields a dict
        raise TypeError(f"expected a record, got {type(record).__name__}")
    return record


class InquiryStateCodec:
    """:func:`encode_state` and :func:`decode_state` as the state codec object engines take."""

    __slots__ = ()

    def encode(self, value: InquiryState, /) -> bytes:
        """The changelog value for *value*."""
        return encode_state(value)

    def decode(self, data: bytes, /) -> InquiryState:
        """The state a changelog value holds."""
        return decode_state(data)
