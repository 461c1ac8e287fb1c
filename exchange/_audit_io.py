"""Reading the audit trail (``<prefix>.audit``): every committed record, decoded.

The whole topic is read at ``read_committed`` without a consumer group, from each partition's
start to its end offset at the start of the read, so the records of aborted transactions (a
worker killed mid-batch) are never seen, and nothing is committed. Records are decoded with
their writer schema from the schema store, without logical types (times as epoch ms).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastavro import schemaless_reader

from exchange._audit_chain import ChainLink, TrailRecord, chain_id
from exchange._audit_signature import signature_key_id
from exchange._envelope_fields import raw_schema
from exchange._errors import CodecError, FramingError
from exchange._schema_store import SchemaStore
from exchange._settings import ExchangeSettings
from exchange._topic_reader import read_to_end
from exchange._topology import Topics

__all__ = ["AuditDecoder", "AuditEntry", "AuditTrail", "about_subject", "read_audit_trail"]

_HEADER = b"\xc3\x01"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One committed audit record: where it is, its chain, its bytes and its fields."""

    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...]
    value: bytes
    fields: dict[str, Any] | None  # None: it does not decode as an AuditRecord

    def trail_record(self) -> TrailRecord:
        """The record as the chain verifier sees it."""
        prev = None if self.fields is None else self.fields.get("prev_hash")
        link = ChainLink(self.offset, prev if isinstance(prev, bytes) else None, self.value)
        return TrailRecord(self.partition, chain_id(self.headers), link)


@dataclass(slots=True)
class AuditTrail:
    """What was read: the entries in offset order per partition, and the partitions whose
    start retention has deleted (their first offset is past 0)."""

    topic: str
    entries: list[AuditEntry] = field(default_factory=list)
    truncated: set[int] = field(default_factory=set)


class AuditDecoder:
    """Decodes audit record values with their writer schema (any revision in the store)."""

    def __init__(self, store: SchemaStore) -> None:
        self._store = store
        self._parsed: dict[bytes, Any] = {}

    def decode(self, value: bytes) -> dict[str, Any]:
        """The record's fields; a :class:`CodecError` if it is not a readable record."""
        if len(value) < 10 or value[:2] != _HEADER:
            raise FramingError("audit record lacks the single-object header")
        fingerprint = value[2:10]
        parsed = self._parsed.get(fingerprint)
        if parsed is None:
            parsed = self._parsed[fingerprint] = raw_schema(self._store.by_fingerprint(fingerprint))
        try:
            fields = schemaless_reader(io.BytesIO(value[10:]), parsed, None)
        except Exception as exc:  # untrusted bytes: any failure means not this schema
            raise FramingError(f"audit record does not decode: {type(exc).__name__}") from exc
        if not isinstance(fields, dict):
            raise FramingError("audit record body is not a record")
        return fields


async def read_audit_trail(settings: ExchangeSettings, store: SchemaStore) -> AuditTrail:
    """Every committed record of the audit topic up to its end offsets at the start."""
    trail, decoder = AuditTrail(Topics.for_settings(settings).audit), AuditDecoder(store)

    def take(records: list[Any]) -> None:
        trail.entries.extend(_entry(record, decoder) for record in records)

    starts = await read_to_end(settings, trail.topic, take)
    trail.truncated = {partition for partition, start in starts.items() if start > 0}
    return trail


def _entry(record: Any, decoder: AuditDecoder) -> AuditEntry:
    value = bytes(record.value or b"")
    try:
        fields: dict[str, Any] | None = decoder.decode(value)
    except CodecError:
        fields = None
    headers = tuple((key, bytes(raw)) for key, raw in record.headers or ())
    return AuditEntry(record.partition, record.offset, headers, value, fields)


def about_subject(
    entries: Iterable[AuditEntry], kind: str, subject_id: str, *, since_ms: int | None = None
) -> list[dict[str, Any]]:
    """The decoded audit records about one subject, oldest first, as "who asked about me,
    when and why" rows: time, requester, provider, service, purpose, case, outcome, and the
    key the requester signed the request with (None if unsigned or not recorded)."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        fields = entry.fields
        subject = None if fields is None else fields.get("subject")
        if fields is None or not subject or subject.get("kind") != kind:
            continue
        if subject.get("id") != subject_id:
            continue
        if since_ms is not None and fields["recorded_at"] < since_ms:
            continue
        rows.append(_row(fields))
    rows.sort(key=lambda row: (row["recorded_at"], row["inquiry_id"]))
    return rows


def _row(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "recorded_at": fields["recorded_at"],
        "created_at": fields.get("created_at"),
        "event": fields["event"],
        "inquiry_id": fields["inquiry_id"],
        "requester": _agency(fields.get("requester")),
        "provider": _agency(fields.get("provider")),
        "service": f"{fields['service_code']}.v{fields['service_version']}",
        "purpose": fields.get("purpose"),
        "case_reference": fields.get("case_reference"),
        "end_user_id": fields.get("end_user_id"),
        "outcome": fields.get("kind"),
        "status": fields.get("status"),
        "reject_reason": fields.get("reject_reason"),
        # Who signed the question: the requester's key id (revision 3 records; else None).
        "request_signed_with": signature_key_id(fields.get("request_signature")),
    }


def _agency(ref: dict[str, Any] | None) -> str | None:
    if not ref:
        return None
    subsystem = ref.get("subsystem")
    return ref["agency"] if subsystem is None else f"{ref['agency']}/{subsystem}"
