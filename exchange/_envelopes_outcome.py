"""Outcomes as the requester reads them: ``InquiryOutcome`` records to :class:`Outcome` values."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import structlog

from exchange._catalog_model import Catalog
from exchange._codec import Codec
from exchange._envelopes_services import ServiceCache
from exchange._errors import CodecError, SchemaMismatchError
from exchange._outcome import Outcome, OutcomeKind
from exchange._signing_relay import verify_relayed
from exchange._wire import INQUIRY_OUTCOME, Headers

log = structlog.get_logger("exchange.client")

__all__ = ["OutcomeDecoder", "as_uuid"]


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
            inquiry_id=as_uuid(record["inquiry_id"]),
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


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
