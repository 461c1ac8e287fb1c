"""Requests as the requester writes them: an ``InquiryRequest`` envelope, built as a plain dict.

See :mod:`exchange._envelopes` for why the hot path skips the pydantic models.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from typing import Any

from exchange._catalog_model import Catalog
from exchange._codec import Codec, Schema
from exchange._envelopes_services import ServiceCache, with_defaults
from exchange._errors import (
    CodecError,
    InquiryRejectedError,
    PayloadTooLargeError,
    SchemaMismatchError,
)
from exchange._models import RejectReason, SubjectKind
from exchange._outcome import InquirySpec
from exchange._signing import Signer
from exchange._wire import INQUIRY_REQUEST, RecordType, inquiry_headers

_SUBJECT_KINDS = frozenset(SubjectKind)

__all__ = ["EncodedInquiry", "RequestEncoder", "traceparent_for"]


def traceparent_for(inquiry_id: uuid.UUID) -> str:
    """A W3C ``traceparent`` whose trace id is the inquiry id (random, 128 bits, never 0)."""
    return f"00-{inquiry_id.hex}-{os.urandom(8).hex()}-01"


def _millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


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
