"""Pure translation between the SDK's values and the envelope records on the wire.

The hot path builds the envelope as a plain dict and hands it to the codec directly (ids as
text, times as epoch milliseconds), skipping the pydantic models, which would cost more than
the Avro encoding itself. Payloads, which callers supply, are written with the codec's strict
writer; the envelopes built here from them are written with :meth:`Codec.encode_trusted` (a
writer compiled once per schema, same bytes). Outcomes are decoded as plain dicts too.

Payloads are written with the newest revision of the service's schema the catalog knows, and
read back resolved to that revision (fields added later appear with their defaults).

Here: the provider side (requests as received, responses and answers). The requester side and
the schema cache live in ``_envelopes_request``, ``_envelopes_outcome`` and
``_envelopes_services``; every name is re-exported here.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._codec import Codec
from exchange._envelopes_outcome import OutcomeDecoder, as_uuid
from exchange._envelopes_request import EncodedInquiry, RequestEncoder, traceparent_for
from exchange._envelopes_services import ServiceCache, ServiceSchemas, with_defaults
from exchange._errors import SchemaMismatchError
from exchange._signing import Signer
from exchange._wire import INQUIRY_REQUEST, INQUIRY_RESPONSE, RecordType, inquiry_headers

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


def header_is(headers: Iterable[tuple[str, bytes]], name: str, value: bytes) -> bool:
    """True when the record carries header ``name`` with exactly ``value`` (no decoding)."""
    return any(key == name and raw == value for key, raw in headers)


def _child_span(traceparent: str | None) -> str | None:
    """The same trace, a new span: ``version-traceid-spanid-flags`` with a fresh span id."""
    if traceparent is None or len(traceparent) != 55:
        return None
    return f"{traceparent[:36]}{os.urandom(8).hex()}{traceparent[52:]}"


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
        inquiry_id=as_uuid(envelope["inquiry_id"]),
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
