"""The catalog's signature policy applied to one record: whose keys, and is a signature required.

A request is signed by its requester, a response by its responder (the agency of the ``out``
topic it came from). A signature is required when the service says ``signatures: required``
(requests to it and its responses) or the signing agency does (everything it writes). A
signature that is present is verified whatever the policy. Pure: the caller passes the record's
headers and value bytes, untouched.
"""

from __future__ import annotations

from exchange._catalog_model import Agency, Service
from exchange._signing import SignatureCheck, SignaturePolicy, check_signature
from exchange._wire import Headers, RecordType

__all__ = ["signature_required", "verify_record"]


def signature_required(signer: Agency | None, service: Service | None) -> bool:
    """Whether the catalog demands that ``signer``'s record about ``service`` be signed."""
    return (service is not None and service.signatures is SignaturePolicy.REQUIRED) or (
        signer is not None and signer.signatures is SignaturePolicy.REQUIRED
    )


def verify_record(
    record_type: RecordType,
    *,
    inquiry_id: str,
    signer_code: str,
    signer: Agency | None,
    service: Service | None,
    headers: Headers,
    value: bytes | None,
) -> SignatureCheck:
    """Check one request or response against ``signer``'s catalog keys and the policy."""
    return check_signature(
        headers,
        keys={} if signer is None else signer.verifiers,
        required=signature_required(signer, service),
        record_type=record_type,
        inquiry_id=inquiry_id,
        agency=signer_code,
        value=value or b"",
    )
