"""Helpers for testing code that uses the SDK, without Kafka.

- :func:`make_inquiry` builds the :class:`~exchange.Inquiry` a handler receives, so a
  provider's handlers can be unit-tested as plain async functions;
- :func:`check_answer` encodes an :class:`~exchange.Answer` exactly as the provider SDK would
  (newest response schema, defaults filled in) and raises if it would not fit;
- :func:`sample_payload` makes a schema-valid request or response payload for any service
  (placeholder values: for smoke tests, load generators and fixtures, not realistic data).

Example::

    inquiry = make_inquiry("nocr.person.verify.v1", {"national_id": "0012345678", ...})
    answer = await verify(inquiry)
    check_answer(catalog, inquiry.service, answer)
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from exchange._answer import Answer, AnswerStatus, Inquiry
from exchange._catalog_model import Catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache, with_defaults
from exchange._errors import CodecError, InquiryRejectedError

__all__ = ["check_answer", "make_inquiry", "sample_payload"]


def make_inquiry(
    service: str,
    payload: dict[str, Any],
    *,
    requester: str = "TEST",
    requester_subsystem: str | None = None,
    purpose: str = "testing",
    case_reference: str | None = None,
    end_user_id: str | None = None,
    subject: tuple[str, str] | None = None,
    deadline_in: float = 30.0,
) -> Inquiry:
    """An inquiry as a handler receives it, created now, due in ``deadline_in`` seconds."""
    now = dt.datetime.now(dt.UTC)
    return Inquiry(
        id=uuid.uuid4(),
        requester=requester,
        requester_subsystem=requester_subsystem,
        service=service,
        purpose=purpose,
        case_reference=case_reference,
        end_user_id=end_user_id,
        subject=subject,
        created_at=now,
        deadline=now + dt.timedelta(seconds=deadline_in),
        payload=payload,
    )


def _codec(schemas_path: Path | str) -> Codec:
    return Codec(SchemaStore.from_directory(schemas_path))


def check_answer(
    catalog: Catalog, service: str, answer: Answer, *, schemas_path: Path | str = "schemas"
) -> bytes | None:
    """Encode the answer's payload as the provider would; return the bytes (None if none).

    :class:`InquiryRejectedError` (``INVALID_PAYLOAD``) if it does not fit the service's
    newest response schema.
    """
    if answer.payload is None or answer.status is AnswerStatus.DEFERRED:
        return None
    codec = _codec(schemas_path)
    schemas = ServiceCache(catalog, codec).get(service)
    try:
        return codec.encode(
            schemas.response, with_defaults(schemas.response_defaults, answer.payload)
        )
    except CodecError as exc:
        raise InquiryRejectedError(
            f"answer does not fit the response schema of {service}: {exc}",
            reason="INVALID_PAYLOAD",
        ) from exc


def sample_payload(
    catalog: Catalog,
    service: str,
    role: Literal["request", "response"] = "request",
    *,
    schemas_path: Path | str = "schemas",
) -> dict[str, Any]:
    """A payload that fits the newest ``role`` schema of ``service``, with placeholder values."""
    schemas = ServiceCache(catalog, _codec(schemas_path)).get(service)
    schema = schemas.request if role == "request" else schemas.response
    value = _Sampler().sample(schema.definition, schema.name.rpartition(".")[0])
    assert isinstance(value, dict)
    return value


class _Sampler:
    """Walks an Avro schema and makes one value for it (first enum symbol, nulls for optionals)."""

    def __init__(self) -> None:
        self._named: dict[str, Any] = {}

    def sample(self, node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            return self._primitive(node, namespace)
        if isinstance(node, list):  # a union: null when allowed, else the first branch
            return None if "null" in node else self.sample(node[0], namespace)
        return self._complex(node, namespace)

    def _primitive(self, name: str, namespace: str) -> Any:
        samples: Mapping[str, Any] = {
            "null": None,
            "boolean": True,
            "int": 1,
            "long": 1,
            "float": 1.0,
            "double": 1.0,
            "bytes": b"\x01",
            "string": "sample",
        }
        if name in samples:
            return samples[name]
        full = name if "." in name else f"{namespace}.{name}"
        return self.sample(self._named.get(full, self._named.get(name)), namespace)

    def _complex(self, node: Mapping[str, Any], namespace: str) -> Any:
        kind = node["type"]
        logical = node.get("logicalType")
        if logical is not None:
            return _logical(logical, node)
        if "name" in node:
            space = node.get("namespace", namespace)
            full = node["name"] if "." in node["name"] else f"{space}.{node['name']}"
            self._named[full] = node
            namespace = full.rpartition(".")[0]
        if kind == "record":
            return {f["name"]: self.sample(f["type"], namespace) for f in node["fields"]}
        return self._container(node, namespace)

    def _container(self, node: Mapping[str, Any], namespace: str) -> Any:
        kind = node["type"]
        if kind == "enum":
            return node["symbols"][0]
        if kind == "array":
            return [self.sample(node["items"], namespace)]
        if kind == "map":
            return {"key": self.sample(node["values"], namespace)}
        if kind == "fixed":
            return b"\x00" * node["size"]
        return self.sample(kind, namespace)


def _logical(logical: str, node: Mapping[str, Any]) -> Any:
    now = dt.datetime.now(dt.UTC)
    if logical == "date":
        return now.date()
    if logical.startswith("timestamp"):
        return now
    if logical.startswith("time"):
        return dt.time(12, 0)
    if logical == "uuid":
        return str(uuid.uuid4())
    if logical == "decimal":
        return decimal.Decimal(1).scaleb(-int(node.get("scale", 0)))
    return _Sampler().sample(node["type"], "")
