"""Names fixed by the wire format: framing bytes, record types, schema names, header names.

Everything here is part of the contract with clients written in other languages and is
described in ``docs/wire-format.md``; changing a value is a breaking change of the wire format.
Header values are ASCII (UTF-8 for the free-text DLQ message); Kafka header values are bytes.
Encoding an inquiry's headers never fails: a character outside ASCII (only possible in text
that failed the bus's checks, such as the id of a MALFORMED request) is written as a Python
backslash escape (``é`` as ``\\xe9``), so a bad writer cannot stop the worker settling it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence

__all__ = [
    "AUDIT_RECORD",
    "CONFLUENT_MAGIC",
    "DEAD_LETTER",
    "ENVELOPE_NAMESPACE",
    "HEADER_DLQ_COMPONENT",
    "HEADER_DLQ_DEAD_LETTERED_AT",
    "HEADER_DLQ_MESSAGE",
    "HEADER_DLQ_REASON",
    "HEADER_DLQ_SOURCE_OFFSET",
    "HEADER_DLQ_SOURCE_PARTITION",
    "HEADER_DLQ_SOURCE_TIMESTAMP",
    "HEADER_DLQ_SOURCE_TOPIC",
    "HEADER_INQUIRY_ID",
    "HEADER_REPLY_TO",
    "HEADER_SIGNATURE",
    "HEADER_SIGNED_RESPONSE",
    "HEADER_TRACEPARENT",
    "HEADER_TYPE",
    "INQUIRY_OUTCOME",
    "INQUIRY_REQUEST",
    "INQUIRY_RESPONSE",
    "SCHEMA_OF_RECORD_TYPE",
    "SINGLE_OBJECT_MAGIC",
    "Headers",
    "RecordType",
    "header_value",
    "inquiry_headers",
]

#: Kafka record headers as aiokafka takes and gives them.
Headers = Sequence[tuple[str, bytes]]

# --- Framing (Avro specification, "Single-object encoding"; Confluent wire format) ----------
#: The two marker bytes that open an Avro single-object encoded record (format version 1).
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
#: The byte that opens a Confluent-framed record; a 4-byte big-endian schema id follows.
CONFLUENT_MAGIC = b"\x00"

# --- Envelope schemas (schemas/envelope/*.avsc) -----------------------------------------------
ENVELOPE_NAMESPACE = "exchange.v1"
INQUIRY_REQUEST = "exchange.v1.InquiryRequest"
INQUIRY_RESPONSE = "exchange.v1.InquiryResponse"
INQUIRY_OUTCOME = "exchange.v1.InquiryOutcome"
AUDIT_RECORD = "exchange.v1.AuditRecord"
DEAD_LETTER = "exchange.v1.DeadLetter"


class RecordType(enum.StrEnum):
    """The value of the ``exchange-type`` header: which envelope a record's value holds."""

    REQUEST = "request"
    RESPONSE = "response"
    OUTCOME = "outcome"
    AUDIT = "audit"


#: The envelope schema each record type's value is written with.
SCHEMA_OF_RECORD_TYPE: dict[RecordType, str] = {
    RecordType.REQUEST: INQUIRY_REQUEST,
    RecordType.RESPONSE: INQUIRY_RESPONSE,
    RecordType.OUTCOME: INQUIRY_OUTCOME,
    RecordType.AUDIT: AUDIT_RECORD,
}

# --- Headers on inquiry records -----------------------------------------------------------------
HEADER_TYPE = "exchange-type"
HEADER_INQUIRY_ID = "exchange-inquiry-id"
HEADER_REPLY_TO = "exchange-reply-to"
#: W3C trace context, under the name the W3C and OpenTelemetry propagators use.
HEADER_TRACEPARENT = "traceparent"
#: The optional Ed25519 signature of a request or response (``exchange/_signing.py``); on an
#: ANSWERED outcome, the provider's, copied by the bus.
HEADER_SIGNATURE = "exchange-signature"
#: On an ANSWERED outcome: the provider's signed response record, byte for byte.
HEADER_SIGNED_RESPONSE = "exchange-signed-response"

# --- Headers on dead-lettered records (the fields of exchange.v1.DeadLetter) ---------------------
HEADER_DLQ_REASON = "exchange-dlq-reason"
HEADER_DLQ_MESSAGE = "exchange-dlq-message"
HEADER_DLQ_SOURCE_TOPIC = "exchange-dlq-source-topic"
HEADER_DLQ_SOURCE_PARTITION = "exchange-dlq-source-partition"
HEADER_DLQ_SOURCE_OFFSET = "exchange-dlq-source-offset"
HEADER_DLQ_SOURCE_TIMESTAMP = "exchange-dlq-source-timestamp"
HEADER_DLQ_DEAD_LETTERED_AT = "exchange-dlq-dead-lettered-at"
HEADER_DLQ_COMPONENT = "exchange-dlq-component"


def inquiry_headers(
    record_type: RecordType,
    inquiry_id: uuid.UUID | str,
    *,
    reply_to: str | None = None,
    traceparent: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers every inquiry record carries, in the documented order."""
    headers = [
        (HEADER_TYPE, record_type.value.encode("ascii")),
        (HEADER_INQUIRY_ID, _ascii(str(inquiry_id))),
    ]
    if reply_to is not None:
        headers.append((HEADER_REPLY_TO, _ascii(reply_to)))
    if traceparent is not None:
        headers.append((HEADER_TRACEPARENT, _ascii(traceparent)))
    return headers


def _ascii(text: str) -> bytes:
    # backslashreplace: never raises, and is the identity on the ASCII text of valid records.
    return text.encode("ascii", errors="backslashreplace")


def header_value(headers: Iterable[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The value of the last header called ``name``, or None (Kafka allows repeats)."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found
