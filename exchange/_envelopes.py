"""Pure translation between the SDK's values and the envelope records on the wire.

The hot path builds the envelope as a plain dict and hands it to the codec directly (ids as
text, times as epoch milliseconds), skipping the pydantic models, which would cost more than
the Avro encoding itself. Payloads, which callers supply, are written with the codec's strict
writer; the envelopes built here from them are written with :meth:`Codec.encode_trusted` (a
writer compiled once per schema, same bytes). Outcomes are decoded as plain dicts too.

Payloads are written with the newest revision of the service's schema the catalog knows, and
read back resolved to that revision (fields added later appear with their defaults).
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._catalog_model import Catalog, Service
from exchange._codec import Codec, Schema
from exchange._errors import (
    CodecError,
    InquiryRejectedError,
    PayloadTooLargeError,
    SchemaMismatchError,
)
from exchange._models import RejectReason, SubjectKind
from exchange._outcome import InquirySpec, Outcome, OutcomeKind
from exchange._signing import Signer
from exchange._signing_relay import verify_relayed
from exchange._wire import (
    INQUIRY_OUTCOME,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    Headers,
    RecordType,
    inquiry_headers,
)

log = structlog.get_logger("exchange.client")

__all__ = [
    "EncodedInquiry",
    "OutcomeDecoder",
    "ReceivedRequest",
    "RequestEncoder",
    "ServiceCache",
    "ServiceSchemas",
    "decode_request",
    "encode_answer",
    "encode_response",
    "header_is",
    "traceparent_for",
    "with_defaults",
]

_SUBJECT_KINDS = frozenset(SubjectKind)


def header_is(headers: Iterable[tuple[str, bytes]], name: str, value: bytes) -> bool:
    """True when the record carries header ``name`` with exactly ``value`` (no decoding)."""
    return any(key == name and raw == value for key, raw in headers)


def traceparent_for(inquiry_id: uuid.UUID) -> str:
    """A W3C ``traceparent`` whose trace id is the inquiry id (random, 128 bits, never 0)."""
    return f"00-{inquiry_id.hex}-{os.urandom(8).hex()}-01"


def _child_span(traceparent: str | None) -> str | None:
    """The same trace, a new span: ``version-traceid-spanid-flags`` with a fresh span id."""
    if traceparent is None or len(traceparent) != 55:
        return None
    return f"{traceparent[:36]}{os.urandom(8).hex()}{traceparent[52:]}"


def _millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _field_defaults(schema: Schema) -> dict[str, Any]:
    """Top-level fields that have a default, with it: filled in when a caller leaves them out
    (the codec's strict writer wants every field; the newest revision adds optional ones)."""
    return {f["name"]: f["default"] for f in schema.definition["fields"] if "default" in f}


def with_defaults(defaults: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the missing defaulted fields filled in (no copy when none miss)."""
    if not defaults or defaults.keys() <= payload.keys():
        return payload
    return {**defaults, **payload}


@dataclass(frozen=True, slots=True)
class ServiceSchemas:
    """One service's codes and the schema revisions this process writes and reads."""

    service: Service
    request: Schema
    response: Schema
    request_defaults: dict[str, Any]
    response_defaults: dict[str, Any]

    @classmethod
    def of(cls, service: Service, codec: Codec) -> ServiceSchemas:
        """Resolve the newest request and response revisions of ``service`` in the store."""
        request, response = service.latest_request, service.latest_response
        if request is None or response is None:
            raise InquiryRejectedError(
                f"service {service.id} has no schemas in this catalog",
                reason=RejectReason.UNKNOWN_SERVICE,
            )
        store = codec.store
        request_schema = store.by_fingerprint(request.fingerprint)
        response_schema = store.by_fingerprint(response.fingerprint)
        return cls(
            service,
            request_schema,
            response_schema,
            _field_defaults(request_schema),
            _field_defaults(response_schema),
        )


class ServiceCache:
    """Service id → its schemas, resolved once per service and process."""

    def __init__(self, catalog: Catalog, codec: Codec) -> None:
        self._catalog = catalog
        self._codec = codec
        self._known: dict[str, ServiceSchemas] = {}

    def get(self, service_id: str) -> ServiceSchemas:
        """The service's schemas; :class:`InquiryRejectedError` if the catalog lacks it."""
        found = self._known.get(service_id)
        if found is None:
            service = self._catalog.service(service_id)
            if service is None:
                raise InquiryRejectedError(
                    f"service {service_id} is not in the catalog",
                    reason=RejectReason.UNKNOWN_SERVICE,
                )
            found = self._known[service_id] = ServiceSchemas.of(service, self._codec)
        return found

    def find(self, service_id: str) -> ServiceSchemas | None:
        """The service's schemas, or None if the catalog lacks it."""
        try:
            return self.get(service_id)
        except InquiryRejectedError:
            return None


# --- requests (requester side) ------------------------------------------------------------------


class EncodedInquiry:
    """One request ready for the producer, with what the client needs to wait for it."""

    __slots__ = (
        "deadline_ms",
        "headers",
        "inquiry_id",
        "key",
        "key_text",
        "provider",
        "service",
        "value",
    )

    def __init__(
        self,
        *,
        inquiry_id: uuid.UUID,
        key_text: str,
        service: str,
        provider: str,
        value: bytes,
        headers: list[tuple[str, bytes]],
        deadline_ms: int,
    ) -> None:
        self.inquiry_id = inquiry_id
        self.key_text = key_text
        self.key = self.key_text.encode("ascii")
        self.service = service
        self.provider = provider
        self.value = value
        self.headers = headers
        self.deadline_ms = deadline_ms

    def seconds_to_deadline(self) -> float:
        """Seconds from now to the inquiry's deadline on the bus (negative once past)."""
        return self.deadline_ms / 1000 - time.time()


class RequestEncoder:
    """Builds ``InquiryRequest`` records for one requester (agency, subsystem, reply-to)."""

    def __init__(
        self,
        catalog: Catalog,
        codec: Codec,
        agency: str,
        subsystem: str | None,
        *,
        reply_to: str | None,
        signer: Signer | None = None,
    ) -> None:
        self._services = ServiceCache(catalog, codec)
        self._codec = codec
        self._envelope = codec.store.get(INQUIRY_REQUEST)
        self._requester = {"agency": agency, "subsystem": subsystem}
        self._reply_to = reply_to
        self._signer = signer

    def encode(self, spec: InquirySpec) -> EncodedInquiry:
        """Validate and encode; :class:`InquiryRejectedError` before anything is sent."""
        schemas = self._services.get(spec.service)
        service = schemas.service
        payload = _encode_payload(
            self._codec,
            schemas.request,
            with_defaults(schemas.request_defaults, spec.payload),
            spec.service,
        )
        inquiry_id = spec.inquiry_id or uuid.uuid4()
        key_text = str(inquiry_id)
        now_ms = int(time.time() * 1000)
        deadline_ms = (
            _millis(spec.deadline)
            if spec.deadline is not None
            else now_ms + int(service.default_deadline_seconds * 1000)
        )
        traceparent = traceparent_for(inquiry_id)
        envelope = {
            "inquiry_id": key_text,
            "requester": self._requester,
            "provider": {"agency": service.provider, "subsystem": service.provider_subsystem},
            "service_code": service.code,
            "service_version": service.version,
            "purpose": spec.purpose,
            "case_reference": spec.case_reference,
            "end_user_id": spec.end_user_id,
            "subject": _subject(spec.subject),
            "created_at": now_ms,
            "deadline": deadline_ms,
            "trace_parent": traceparent,
            "reply_to": self._reply_to,
            "payload": payload,
        }
        try:
            # Built here from checked values (the payload was encoded strictly above): the
            # compiled writer, without fastavro's per-field checks (same bytes).
            value = self._codec.encode_trusted(self._envelope, envelope)
        except CodecError as exc:
            raise InquiryRejectedError(
                f"inquiry to {spec.service} cannot be encoded: {exc}",
                reason=_reject_reason(exc),
            ) from exc
        headers = inquiry_headers(
            RecordType.REQUEST, key_text, reply_to=self._reply_to, traceparent=traceparent
        )
        if self._signer is not None:
            headers = self._signer.signed_headers(RecordType.REQUEST, key_text, value, headers)
        return EncodedInquiry(
            inquiry_id=inquiry_id,
            key_text=key_text,
            service=spec.service,
            provider=service.provider,
            value=value,
            headers=headers,
            deadline_ms=deadline_ms,
        )


def _encode_payload(codec: Codec, schema: Schema, payload: dict[str, Any], service: str) -> bytes:
    try:
        return codec.encode(schema, payload)
    except CodecError as exc:
        raise InquiryRejectedError(
            f"payload does not fit the request schema of {service}: {exc}",
            reason=_reject_reason(exc),
        ) from exc


def _reject_reason(exc: CodecError) -> str:
    if isinstance(exc, PayloadTooLargeError):
        return RejectReason.PAYLOAD_TOO_LARGE
    if isinstance(exc, SchemaMismatchError):
        return RejectReason.INVALID_PAYLOAD
    return RejectReason.MALFORMED


def _subject(subject: tuple[str, str] | None) -> dict[str, str] | None:
    if subject is None:
        return None
    kind, subject_id = subject
    if kind not in _SUBJECT_KINDS:
        raise InquiryRejectedError(
            f"subject kind {kind!r} is not one of {sorted(_SUBJECT_KINDS)}",
            reason=RejectReason.MALFORMED,
        )
    return {"kind": kind, "id": subject_id}


# --- outcomes (requester side) ------------------------------------------------------------------


class OutcomeDecoder:
    """Turns ``InquiryOutcome`` records into :class:`Outcome` values, payload decoded."""

    def __init__(self, catalog: Catalog, codec: Codec) -> None:
        self._services = ServiceCache(catalog, codec)
        self._catalog = catalog
        self._codec = codec
        self._envelope = codec.store.get(INQUIRY_OUTCOME)

    def decode(
        self, value: bytes, *, elapsed: float | None = None, headers: Headers | None = None
    ) -> Outcome:
        """Decode one outcome; :class:`CodecError` (and nothing else) if it or its payload is
        not readable. With the record's ``headers``, a provider's signed response relayed on
        it is verified (``Outcome.signed_by``)."""
        record = self._codec.decode(value, reader=self._envelope)
        try:
            outcome = self._outcome(record, elapsed)
            return outcome if not headers else self._with_proof(outcome, record, headers)
        except CodecError:
            raise
        except (KeyError, ValueError, TypeError) as exc:  # e.g. a kind newer than this SDK
            # The type only: the message could quote a value of the payload.
            raise SchemaMismatchError(
                f"outcome not readable as {INQUIRY_OUTCOME}: {type(exc).__name__}"
            ) from exc

    def _with_proof(self, outcome: Outcome, record: dict[str, Any], headers: Headers) -> Outcome:
        proof, problem = verify_relayed(headers, record, catalog=self._catalog, codec=self._codec)
        if problem is not None:
            log.warning(
                "provider signature not verified",
                inquiry_id=str(outcome.inquiry_id),
                provider=outcome.provider,
                problem=problem,
            )
        if proof is None:
            return outcome
        return dataclasses.replace(outcome, signed_by=proof.key_id, proof=proof)

    def _outcome(self, record: dict[str, Any], elapsed: float | None) -> Outcome:
        code, version = record["service_code"], record["service_version"]
        raw_payload = record["payload"]
        payload = None
        if raw_payload is not None:
            schemas = self._services.find(f"{code}.v{version}")
            payload = self._codec.decode(
                raw_payload, reader=schemas.response if schemas is not None else None
            )
        error = record["error"]
        return Outcome(
            inquiry_id=_as_uuid(record["inquiry_id"]),
            kind=OutcomeKind(record["kind"]),
            service=f"{code}.v{version}",
            provider=record["provider"]["agency"],
            status=record["status"],
            payload=payload,
            reject_reason=record["reject_reason"],
            error_code=None if error is None else error["code"],
            error_message=None if error is None else error["message"],
            answered_by=record["answered_by"],
            detail=record["detail"],
            settled_at=record["settled_at"],
            elapsed=elapsed,
        )


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --- requests and responses (provider side) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A request read from ``in.<AGENCY>``: its envelope fields and, once decoded, payload."""

    envelope: dict[str, Any]
    inquiry_id: uuid.UUID
    service_id: str
    deadline: datetime

    def inquiry(self, payload: dict[str, Any]) -> Inquiry:
        """The handler's view of this request."""
        env = self.envelope
        subject = env["subject"]
        return Inquiry(
            id=self.inquiry_id,
            requester=env["requester"]["agency"],
            requester_subsystem=env["requester"]["subsystem"],
            service=self.service_id,
            purpose=env["purpose"],
            case_reference=env["case_reference"],
            end_user_id=env["end_user_id"],
            subject=None if subject is None else (subject["kind"], subject["id"]),
            created_at=env["created_at"],
            deadline=self.deadline,
            payload=payload,
        )


def decode_request(value: bytes, codec: Codec) -> ReceivedRequest:
    """Decode an ``InquiryRequest`` envelope (payload left encoded); :class:`CodecError`."""
    envelope = codec.decode(value, reader=INQUIRY_REQUEST)
    return ReceivedRequest(
        envelope=envelope,
        inquiry_id=_as_uuid(envelope["inquiry_id"]),
        service_id=f"{envelope['service_code']}.v{envelope['service_version']}",
        deadline=envelope["deadline"],
    )


def encode_answer(
    codec: Codec,
    services: ServiceCache,
    request: ReceivedRequest,
    answer: Answer,
    *,
    manual: bool,
    signer: Signer | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Encode a provider's (or, ``manual``, a person's) :class:`Answer` to ``request`` as its
    ``InquiryResponse``, signed by ``signer`` if given; :class:`CodecError` if the payload does
    not fit the response schema."""
    error = None
    if answer.status is AnswerStatus.ERROR:
        code = answer.error_code or ("MANUAL_ERROR" if manual else "ERROR")
        error = (code, answer.error_message or "", answer.retriable)
    return encode_response(
        codec,
        services.find(request.service_id),
        request,
        status=answer.status,
        payload=answer.payload,
        error=error,
        manual=manual,
        signer=signer,
    )


def encode_response(
    codec: Codec,
    schemas: ServiceSchemas | None,
    request: ReceivedRequest,
    *,
    status: AnswerStatus,
    payload: dict[str, Any] | None,
    error: tuple[str, str, bool] | None,
    manual: bool,
    signer: Signer | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Encode the ``InquiryResponse`` to ``request`` (signed by ``signer`` if given);
    :class:`CodecError` if the payload does not fit the service's newest response schema."""
    env = request.envelope
    traceparent = _child_span(env["trace_parent"])
    payload_bytes = None
    if payload is not None:
        if schemas is None:
            raise SchemaMismatchError(f"no response schema known for {request.service_id}")
        payload_bytes = codec.encode(
            schemas.response, with_defaults(schemas.response_defaults, payload)
        )
    response = {
        "inquiry_id": str(request.inquiry_id),
        # The bus accepts a response only from the inquiry's provider, as the request names it.
        "responder": env["provider"],
        "service_code": env["service_code"],
        "service_version": env["service_version"],
        "status": status.value,
        "error": None
        if error is None
        else {"code": error[0], "message": error[1], "retriable": error[2]},
        "answered_by": "MANUAL" if manual else "AUTOMATIC",
        "responded_at": int(time.time() * 1000),
        "payload": payload_bytes,
        "trace_parent": traceparent,
    }
    value = codec.encode_trusted(INQUIRY_RESPONSE, response)  # built here; payload checked
    headers = inquiry_headers(RecordType.RESPONSE, request.inquiry_id, traceparent=traceparent)
    if signer is not None:
        headers = signer.signed_headers(RecordType.RESPONSE, response["inquiry_id"], value, headers)
    return value, headers
