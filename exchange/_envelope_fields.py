"""From decoded envelope fields to the correlator's values.

The stream workers read requests and responses as plain dicts: ids as text and times as epoch
milliseconds when read without logical types (the hot path's way), ``UUID`` and ``datetime``
when read with them; both are accepted. Optional fields a writer's older revision lacks are
read with ``dict.get``.

A ``trace_parent`` that is not a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``, lower
case) is dropped here, at the entry: it is only copied onto outcome headers, and text a writer
chose must not reach them unchecked. The reply-to is checked by the router (MALFORMED).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

from exchange._codec import Schema
from exchange._events import ProviderError, ResponseArrived
from exchange._state import InquiryRecord

__all__ = ["inquiry_from_fields", "raw_schema", "response_from_fields", "trace_parent"]

# W3C Trace Context, section 3.2 "traceparent header": version-traceid-parentid-flags.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def inquiry_from_fields(fields: Mapping[str, Any], received_at_ms: int) -> InquiryRecord:
    """The :class:`InquiryRecord` of a decoded ``InquiryRequest`` read at *received_at_ms*."""
    requester, provider = fields["requester"], fields["provider"]
    subject = fields.get("subject")
    return InquiryRecord(
        inquiry_id=_text(fields["inquiry_id"]),
        requester_agency=requester["agency"],
        requester_subsystem=requester.get("subsystem"),
        provider_agency=provider["agency"],
        provider_subsystem=provider.get("subsystem"),
        service_code=fields["service_code"],
        service_version=fields["service_version"],
        purpose=fields["purpose"],
        created_at_ms=_millis(fields["created_at"]),
        deadline_ms=_millis(fields["deadline"]),
        received_at_ms=received_at_ms,
        case_reference=fields.get("case_reference"),
        end_user_id=fields.get("end_user_id"),
        subject_kind=None if subject is None else str(subject["kind"]),
        subject_id=None if subject is None else subject["id"],
        reply_to=fields.get("reply_to"),
        trace_parent=trace_parent(fields.get("trace_parent")),
    )


def response_from_fields(
    fields: Mapping[str, Any], *, source_agency: str, now_ms: int, invalid: str | None = None
) -> ResponseArrived:
    """The :class:`ResponseArrived` of a decoded ``InquiryResponse`` read from *source_agency*.

    The responder is the topic's agency, the only one able to write there; the envelope's
    claim is checked by :meth:`exchange._routing.Router.check_response`.
    """
    responder = fields["responder"]
    error = fields.get("error")
    return ResponseArrived(
        inquiry_id=_text(fields["inquiry_id"]),
        responder_agency=source_agency,
        responder_subsystem=responder.get("subsystem"),
        service_code=fields["service_code"],
        service_version=fields["service_version"],
        status=str(fields["status"]),
        answered_by=str(fields["answered_by"]),
        responded_at_ms=_millis(fields["responded_at"]),
        now_ms=now_ms,
        payload=fields.get("payload"),
        error=None
        if error is None
        else ProviderError(error["code"], error["message"], bool(error.get("retriable"))),
        invalid=invalid,
        trace_parent=trace_parent(fields.get("trace_parent")),
    )


def trace_parent(value: Any) -> str | None:
    """*value* if it is a W3C ``traceparent``, else None (absent, or not of that form)."""
    if isinstance(value, str) and _TRACEPARENT.fullmatch(value) is not None:
        return value
    return None


def raw_schema(schema: Schema) -> Any:
    """``schema`` parsed without its logical types (same canonical form, same fingerprint):
    it reads the same bytes, with times as epoch milliseconds, ids as text, dates as day
    numbers and decimals as bytes, at half the cost."""
    return parse_schema(_strip(schema.definition))


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _strip(value) for key, value in node.items() if key != "logicalType"}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _millis(value: Any) -> int:
    if isinstance(value, datetime):  # exact, unlike value.timestamp() * 1000
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
