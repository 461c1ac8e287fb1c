"""The envelopes as the stream workers read and write them: plain dicts, no pydantic.

The hot path reads every request and response and writes every outcome and audit record, so
it skips two costs the general :class:`~exchange._codec.Codec` pays:

* **Logical types.** The envelope schemas declare ``timestamp-millis`` and ``uuid``; fastavro
  turns those into ``datetime`` and ``UUID`` objects on read (and back on write), which costs
  as much as the Avro body itself. Logical types are not part of a schema's Parsing Canonical
  Form, so a copy of each schema with them removed has the **same fingerprint**: records read
  and written with the copy are byte-for-byte those of the original, with times as epoch
  milliseconds and ids as text.
* **Strict writing.** The dicts written here are built from values the worker read and checked
  itself, so they are written by a writer compiled once per schema
  (:mod:`exchange._avro_compiled`, same bytes, 2-3 times faster than fastavro's); fastavro,
  without its strict per-field check, writes a schema that writer does not cover.

Every envelope revision in the store is readable (a record is read with its writer schema, so
a field added later is simply absent: optional fields are read with ``dict.get``); records are
written with the current revision.
"""

from __future__ import annotations

import io
from typing import Any, Final

from fastavro import schemaless_reader, schemaless_writer

from exchange._audit_signature import audit_request_signature
from exchange._avro_compiled import Writer, compile_writer
from exchange._codec import Codec
from exchange._envelope_fields import raw_schema
from exchange._errors import (
    FramingError,
    PayloadTooLargeError,
    SchemaMismatchError,
)
from exchange._events import AuditEvent, AuditKind, ProviderError, Settlement
from exchange._state import InquiryRecord, Phase
from exchange._wire import (
    AUDIT_RECORD,
    INQUIRY_OUTCOME,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    SINGLE_OBJECT_MAGIC,
)

__all__ = ["EnvelopeIO", "UnexpectedRecordError", "raw_schema"]

_HEADER_SIZE: Final = 10
#: The audit schema has no symbol for a response to an unknown inquiry; its doc files that
#: under FOREIGN_RESPONSE ("… or for an unknown inquiry").
_AUDIT_EVENT = {kind: kind.value for kind in AuditKind} | {
    AuditKind.UNKNOWN_RESPONSE: "FOREIGN_RESPONSE"
}
_DELIVERED = frozenset({Phase.ANSWERED, Phase.FAILED})


class UnexpectedRecordError(SchemaMismatchError):
    """A valid record of the bus, but not one an agency may write to its ``out`` topic."""

    reason = "unexpected-record"


class EnvelopeIO:
    """Reads requests and responses, writes outcomes and audit records, as plain dicts."""

    def __init__(self, codec: Codec) -> None:
        store = codec.store
        self.max_record_bytes = codec.max_record_bytes
        self._readers: dict[bytes, tuple[str, Any]] = {}
        for name in (INQUIRY_REQUEST, INQUIRY_RESPONSE):
            for schema in store.versions(name):
                self._readers[schema.fingerprint] = (name, raw_schema(schema))
        self._store = store
        outcome, audit = store.get(INQUIRY_OUTCOME), store.get(AUDIT_RECORD)
        self._outcome = _writer(outcome.header, outcome.definition, raw_schema(outcome))
        self._audit = _writer(audit.header, audit.definition, raw_schema(audit))

    # --- reading ------------------------------------------------------------------------------

    def read(self, value: bytes | None, *, limit: bool = True) -> tuple[str, dict[str, Any]]:
        """``(schema name, fields)`` of a request or response; a :class:`CodecError` else.

        ``limit=False`` reads a record over the size limit too (the broker's own limit still
        bounds it), to tell the writer of an oversized request why it was refused.
        """
        if value is None:
            raise FramingError("record has no value (a tombstone)")
        if limit and len(value) > self.max_record_bytes:
            raise PayloadTooLargeError(
                f"record is {len(value)} bytes, over the limit of {self.max_record_bytes}"
            )
        if len(value) < _HEADER_SIZE or value[:2] != SINGLE_OBJECT_MAGIC:
            raise FramingError("record lacks the single-object header c301 + fingerprint")
        found = self._readers.get(value[2:_HEADER_SIZE])
        if found is None:
            known = self._store.by_fingerprint(value[2:_HEADER_SIZE])  # UnknownSchemaError
            raise UnexpectedRecordError(f"a {known.name} record is not a request or response")
        name, parsed = found
        buffer = io.BytesIO(value)
        buffer.seek(_HEADER_SIZE)
        try:
            fields = schemaless_reader(buffer, parsed, None)
        except Exception as exc:  # any failure on untrusted bytes means: not this schema
            raise SchemaMismatchError(
                f"body does not decode as {name}: {type(exc).__name__}: {exc}"
            ) from exc
        if buffer.tell() != len(value):
            raise SchemaMismatchError(f"{len(value) - buffer.tell()} bytes left after the body")
        if not isinstance(fields, dict):  # a record schema always yields a dict
            raise SchemaMismatchError(f"{name} body is not a record")
        return name, fields

    # --- writing ------------------------------------------------------------------------------

    def outcome(self, settlement: Settlement) -> bytes:
        """The ``InquiryOutcome`` record of ``settlement``."""
        return _write(self._outcome, outcome_fields(settlement))

    def audit(
        self, event: AuditEvent, prev_hash: bytes | None = None, signature: str | None = None
    ) -> bytes:
        """The ``AuditRecord`` of ``event``, linked to ``prev_hash``, its own hash null (see
        :func:`exchange._audit_chain.seal`); ``signature``: the causing record's header."""
        fields = audit_fields(event, prev_hash)
        fields["signature"] = signature
        fields["request_signature"] = audit_request_signature(event)
        return _write(self._audit, fields)


def _writer(header: bytes, definition: Any, parsed: Any) -> tuple[bytes, Writer | None, Any]:
    return header, compile_writer(definition), parsed


def _write(schema: tuple[bytes, Writer | None, Any], fields: dict[str, Any]) -> bytes:
    header, compiled, parsed = schema
    if compiled is not None:
        try:
            return header + compiled(fields)
        except KeyError:  # a field left to its schema default: fastavro writes the default
            pass
    out = io.BytesIO()
    out.write(header)
    schemaless_writer(out, parsed, fields)
    return out.getvalue()


def _ref(agency: str, subsystem: str | None) -> dict[str, Any]:
    return {"agency": agency, "subsystem": subsystem}


# A record inside a union is a plain dict: the compiled writer knows the branch (every union
# of these schemas is [null, T]); fastavro, the fallback, finds it by trying each branch.
def _opt_ref(agency: str | None, subsystem: str | None) -> dict[str, Any] | None:
    return None if agency is None else {"agency": agency, "subsystem": subsystem}


def _error(error: ProviderError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "retriable": error.retriable}


def outcome_fields(s: Settlement) -> dict[str, Any]:
    """The fields of the ``InquiryOutcome`` of settlement ``s`` (times as epoch ms)."""
    inquiry = s.inquiry
    return {
        "inquiry_id": inquiry.inquiry_id,
        "requester": _ref(inquiry.requester_agency, inquiry.requester_subsystem),
        "provider": _ref(inquiry.provider_agency, inquiry.provider_subsystem),
        "service_code": inquiry.service_code,
        "service_version": inquiry.service_version,
        "purpose": inquiry.purpose,
        "case_reference": inquiry.case_reference,
        "created_at": inquiry.created_at_ms,
        "deadline": inquiry.deadline_ms,
        "reply_to": inquiry.reply_to,
        "kind": s.kind.value,
        "status": s.status,
        "reject_reason": s.reject_reason,
        "error": _error(s.error),
        "answered_by": s.answered_by,
        "settled_at": s.settled_at_ms,
        "payload": s.payload,
        "detail": s.detail,
    }


def audit_fields(event: AuditEvent, prev_hash: bytes | None = None) -> dict[str, Any]:
    """The fields of the ``AuditRecord`` of ``event``: what the bus knew, no payload."""
    fields = _identity(event)
    settlement, response = event.settlement, event.response
    created, deadline = fields["created_at"], fields["deadline"]
    fields.update(
        event=_AUDIT_EVENT[event.kind],
        inquiry_id=event.inquiry_id,
        kind=None,
        status=None if response is None else response.status,
        reject_reason=None,
        error_code=None,
        answered_by=None if response is None else response.answered_by,
        responded_at=None if response is None else response.responded_at_ms,
        recorded_at=event.at_ms,
        latency_ms=None if created is None else event.at_ms - created,
        within_deadline=None,
        prev_hash=prev_hash,
        hash=None,
    )
    if response is not None:
        fields["responder"] = _opt_ref(response.responder_agency, response.responder_subsystem)
        fields["error_code"] = None if response.error is None else response.error.code
    if settlement is not None:
        fields.update(
            kind=settlement.kind.value,
            status=settlement.status,
            reject_reason=settlement.reject_reason,
            error_code=None if settlement.error is None else settlement.error.code,
            answered_by=settlement.answered_by,
            responded_at=settlement.responded_at_ms,
            within_deadline=_within_deadline(settlement, deadline),
        )
    return fields


def _within_deadline(settlement: Settlement, deadline: int | None) -> bool | None:
    if settlement.kind is Phase.TIMED_OUT:
        return False
    if settlement.kind in _DELIVERED and deadline is not None:
        return settlement.settled_at_ms <= deadline
    return None


def _identity(event: AuditEvent) -> dict[str, Any]:
    """Who asked whom about what, from the fullest record of the inquiry the event holds."""
    # A duplicate request is recorded as its writer sent it (the writer is the news).
    full = event.settlement.inquiry if event.settlement is not None else event.request
    state = event.state
    if full is None and isinstance(state, InquiryRecord):
        full = state
    if full is not None:
        return _full_identity(full)
    fields: dict[str, Any] = dict.fromkeys(_IDENTITY_FIELDS)
    if state is not None:  # a settled mark: agencies and service, nothing personal
        fields["requester"] = _opt_ref(state.requester_agency, None)
        fields["provider"] = _opt_ref(state.provider_agency, None)
        fields["service_code"] = state.service_code
        fields["service_version"] = state.service_version
    elif event.response is not None:  # an unknown inquiry: only what the response says
        fields["service_code"] = event.response.service_code
        fields["service_version"] = event.response.service_version
    return fields


_IDENTITY_FIELDS = (
    "requester", "provider", "responder", "service_code", "service_version", "purpose",
    "case_reference", "end_user_id", "subject", "created_at", "deadline",
)  # fmt: skip


def _full_identity(inquiry: InquiryRecord) -> dict[str, Any]:
    subject: dict[str, Any] | None = None
    if inquiry.subject_kind is not None and inquiry.subject_id is not None:
        subject = {"kind": inquiry.subject_kind, "id": inquiry.subject_id}
    return {
        "requester": _opt_ref(inquiry.requester_agency, inquiry.requester_subsystem),
        "provider": _opt_ref(inquiry.provider_agency, inquiry.provider_subsystem),
        "responder": None,
        "service_code": inquiry.service_code,
        "service_version": inquiry.service_version,
        "purpose": inquiry.purpose,
        "case_reference": inquiry.case_reference,
        "end_user_id": inquiry.end_user_id,
        "subject": subject,
        "created_at": inquiry.created_at_ms,
        "deadline": inquiry.deadline_ms,
    }
