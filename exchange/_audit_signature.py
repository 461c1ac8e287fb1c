"""The requester's signature, kept with a pending inquiry and written to its audit record.

A signed request carries ``exchange-signature: v1:<key id>:<base64 signature>`` (wire format,
section 10). The bus verifies it when it routes the request; to record it in the audit record
of the inquiry's outcome (``AuditRecord.request_signature``, whatever the outcome: ANSWERED,
FAILED, TIMED_OUT), the pending state keeps it in **compact form**, 73 bytes::

    01                 version of this form (1: a v1 header)
    <8 bytes>          the key id (16 hex digits in the header)
    <64 bytes>         the Ed25519 signature

and the audit record gets the header's text back, byte for byte as the requester wrote it
(``format_header`` inverts ``parse_header`` for every header that parses). The request itself
is not kept: the provider holds it (it arrives on ``in.<AGENCY>`` with its headers).

A header that does not parse is not kept (only a refused request can carry one, and its
audit record has the header as received in ``signature``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from exchange._events import AuditEvent
from exchange._signing import format_header, parse_header
from exchange._state import InquiryRecord
from exchange._wire import HEADER_SIGNATURE, header_value

__all__ = [
    "COMPACT_SIZE",
    "audit_request_signature",
    "compact_signature",
    "compact_text",
    "request_signature",
    "signature_key_id",
]

_VERSION: Final = b"\x01"
_KEY_ID_BYTES: Final = 8
#: Bytes of a compact signature: version, key id, signature.
COMPACT_SIZE: Final = 1 + _KEY_ID_BYTES + 64


def compact_signature(header: bytes | None) -> bytes | None:
    """The compact form of an ``exchange-signature`` header value; None if absent or malformed."""
    if header is None:
        return None
    try:
        key_id, signature = parse_header(header)
        key = bytes.fromhex(key_id)
    except ValueError:
        return None
    if len(key) != _KEY_ID_BYTES or format_header(key_id, signature) != header:
        return None  # not the canonical text: keeping it compact would change the bytes
    return _VERSION + key + signature


def request_signature(headers: Iterable[tuple[str, bytes]] | None) -> bytes | None:
    """The compact signature of a request record's headers, or None."""
    return compact_signature(header_value(headers, HEADER_SIGNATURE))


def compact_text(compact: bytes) -> str:
    """The header text a compact signature came from."""
    if len(compact) != COMPACT_SIZE or compact[:1] != _VERSION:
        raise ValueError("not a compact signature")
    key_id = compact[1 : 1 + _KEY_ID_BYTES].hex()
    return format_header(key_id, compact[1 + _KEY_ID_BYTES :]).decode("ascii")


def audit_request_signature(event: AuditEvent) -> str | None:
    """The requester's signature header text for ``event``'s audit record, or None.

    From the inquiry the event is about: the settled one's pending record, the request of a
    DUPLICATE_REQUEST, or the pending record a foreign response was compared with.
    """
    record = _inquiry(event)
    if record is None or record.request_signature is None:
        return None
    return compact_text(record.request_signature)


def _inquiry(event: AuditEvent) -> InquiryRecord | None:
    if event.settlement is not None:
        return event.settlement.inquiry
    if event.request is not None:
        return event.request
    return event.state if isinstance(event.state, InquiryRecord) else None


def signature_key_id(text: str | None) -> str | None:
    """The key id of a signature header's text (for "who signed"), or None."""
    if text is None:
        return None
    parts = text.split(":")
    return parts[1] if len(parts) == 3 else None
