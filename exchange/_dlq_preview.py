"""A short, payload-free look at a dead letter's bytes, for ``exchange dlq show`` (pure)."""

from __future__ import annotations

from exchange._codec import Codec
from exchange._errors import CodecError
from exchange._wire import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC

__all__ = ["preview", "text_or_hex"]

_ENVELOPE_IDENTITY = ("inquiry_id", "service_code", "service_version")


def preview(value: bytes | None, codec: Codec | None = None, *, width: int = 16) -> str:
    """A short, payload-free look at a value: its Avro schema and inquiry identity if the
    codec knows it, the Confluent schema id, or the first ``width`` bytes in hex."""
    if value is None:
        return "(no value)"
    if codec is not None and value[:2] == SINGLE_OBJECT_MAGIC:
        return _avro_preview(value, codec, width)
    if value[:1] == CONFLUENT_MAGIC and len(value) >= 5:
        schema_id = int.from_bytes(value[1:5], "big")
        return f"{_hex(value, width)} (Confluent framing? schema id {schema_id})"
    return _hex(value, width)


def _avro_preview(value: bytes, codec: Codec, width: int) -> str:
    try:
        schema = codec.peek(value)
    except CodecError as exc:
        return f"{_hex(value, width)} ({exc.reason})"
    try:
        decoded = codec.decode(value)
    except CodecError as exc:
        return f"{schema.name}, does not decode ({exc.reason})"
    identity = [f"{k}={decoded[k]}" for k in _ENVELOPE_IDENTITY if k in decoded]
    for role in ("requester", "provider", "responder"):
        ref = decoded.get(role)
        if isinstance(ref, dict) and "agency" in ref:
            identity.append(f"{role}={ref['agency']}")
    return f"{schema.name} " + (" ".join(identity) if identity else "(decodes)")


def _hex(value: bytes, width: int) -> str:
    more = "…" if len(value) > width else ""
    return value[:width].hex(" ") + more


def text_or_hex(data: bytes | None) -> str | None:
    """Printable ASCII as it is, anything else as ``0x`` and hex; None stays None."""
    if data is None:
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return "0x" + data.hex()
    return text if text.isprintable() else "0x" + data.hex()
