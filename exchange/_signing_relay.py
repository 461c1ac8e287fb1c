"""Carrying a provider's signed response to the requester, and checking it there.

The bus writes the requester a new record (the ``InquiryOutcome``), which the provider never
signed. So that the requester need not trust the bus, the worker copies onto an ANSWERED
outcome the provider's ``exchange-signature`` header and the response record it covers,
byte for byte, in ``exchange-signed-response``. The requester SDK verifies the signature
against the provider's catalog keys and checks that the signed response says what the outcome
says (inquiry id, status, payload bytes); it then exposes the key id as ``Outcome.signed_by``
and the header and bytes as ``Outcome.proof``, which is what the requester keeps to prove what
the provider answered.

The copy is skipped when the outcome and the response together would pass the record size
limit (a payload near the limit would otherwise make an outcome no broker accepts): that
outcome arrives without ``signed_by``, and the proof stays in the provider's ``out`` topic and
the audit trail (``AuditRecord.signature``). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exchange._catalog_model import Catalog
from exchange._codec import Codec
from exchange._errors import CodecError
from exchange._signing import SignedProof, check_signature
from exchange._wire import (
    HEADER_SIGNATURE,
    HEADER_SIGNED_RESPONSE,
    INQUIRY_RESPONSE,
    RecordType,
    header_value,
)

__all__ = ["relay_headers", "verify_relayed"]

#: Room left for the outcome's headers and Kafka's per-record overhead.
_HEADROOM = 1024


def relay_headers(
    response_headers: Iterable[tuple[str, bytes]] | None,
    response_value: bytes | None,
    *,
    outcome_size: int,
    limit: int,
) -> tuple[tuple[str, bytes], ...]:
    """The headers to add to an ANSWERED outcome settled by this response (none if it was
    unsigned, or if copying it would pass ``limit`` bytes)."""
    signature = header_value(response_headers, HEADER_SIGNATURE)
    if signature is None or response_value is None:
        return ()
    if outcome_size + len(response_value) + len(signature) + _HEADROOM > limit:
        return ()
    return ((HEADER_SIGNATURE, signature), (HEADER_SIGNED_RESPONSE, response_value))


def verify_relayed(
    headers: Iterable[tuple[str, bytes]] | None,
    outcome: dict[str, Any],
    *,
    catalog: Catalog,
    codec: Codec,
) -> tuple[SignedProof | None, str | None]:
    """Check the provider's signed response relayed on ``outcome`` (its decoded fields).

    Returns the proof when it verifies and matches, else None with the reason (None, None
    when the outcome carries no signed response at all).
    """
    headers = tuple(headers or ())
    signature = header_value(headers, HEADER_SIGNATURE)
    response = header_value(headers, HEADER_SIGNED_RESPONSE)
    if signature is None or response is None:
        return None, None
    provider = str(outcome["provider"]["agency"])
    inquiry_id = str(outcome["inquiry_id"])
    agency = catalog.agency(provider)
    check = check_signature(
        ((HEADER_SIGNATURE, signature),),
        keys={} if agency is None else agency.verifiers,
        required=True,
        record_type=RecordType.RESPONSE,
        inquiry_id=inquiry_id,
        agency=provider,
        value=response,
    )
    if check.problem is not None or check.key_id is None:
        return None, check.problem
    mismatch = _mismatch(response, outcome, inquiry_id, codec)
    if mismatch is not None:
        return None, mismatch
    return SignedProof(check.key_id, signature, response), None


def _mismatch(
    response: bytes, outcome: dict[str, Any], inquiry_id: str, codec: Codec
) -> str | None:
    """Why the signed response does not back the outcome, or None when it does."""
    try:
        fields = codec.decode(response, reader=INQUIRY_RESPONSE)
    except CodecError as exc:
        return f"the signed response does not decode: {exc.reason}"
    if str(fields["inquiry_id"]) != inquiry_id:
        return "the signed response is for another inquiry"
    if fields["status"] != outcome["status"] or fields["payload"] != outcome["payload"]:
        return "the signed response does not match the outcome"
    return None
