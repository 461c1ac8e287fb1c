"""Payloads between the command line's JSON and the Avro schemas' Python values (pure).

On the way in (``--payload``), JSON has no dates, timestamps, decimals or bytes, so each value
is read as its schema field asks: a ``date`` from ``"1990-03-21"``, a ``timestamp-millis``
from ISO 8601 (``Z`` or an offset; UTC when none), a ``decimal`` from a string or number,
``bytes`` from base64. Fields left out keep their schema defaults (the SDK fills them in). On
the way out, dates and times become ISO strings, decimals strings, bytes base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exchange._errors import ConfigError

__all__ = ["from_json", "read_json_argument", "to_json"]


def read_json_argument(text: str, what: str = "--payload") -> dict[str, Any]:
    """``text`` as a JSON object; ``@path`` reads the file (``@-`` is not supported)."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return value


class _Reader:
    """Walks one schema, converting a JSON value to what the Avro writer takes."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def value(self, node: Any, data: Any, namespace: str, where: str) -> Any:
        if isinstance(node, list):
            return self._union(node, data, namespace, where)
        if isinstance(node, str):
            return self._named_or_primitive(node, data, namespace, where)
        logical = node.get("logicalType")
        if logical is not None and data is not None:
            return _logical(logical, data, where)
        if "name" in node:
            namespace = self._define(node, namespace)
        return self._complex(node, data, namespace, where)

    def _define(self, node: Mapping[str, Any], namespace: str) -> str:
        """Remember a named type; the namespace its nested types inherit."""
        space = node.get("namespace", namespace)
        full = node["name"] if "." in node["name"] else f"{space}.{node['name']}"
        self.named[full] = node
        self.named[node["name"]] = node
        return str(full.rpartition(".")[0])

    def _complex(self, node: Mapping[str, Any], data: Any, namespace: str, where: str) -> Any:
        kind = node["type"]
        if kind == "record":
            return self.record(node, data, namespace, where)
        if kind == "array" and isinstance(data, list):
            return [self.value(node["items"], item, namespace, where) for item in data]
        if kind == "map" and isinstance(data, dict):
            return {k: self.value(node["values"], v, namespace, where) for k, v in data.items()}
        if kind in ("fixed", "bytes") and isinstance(data, str):
            return _b64(data, where)
        if kind in ("enum", "array", "map", "fixed"):
            return data  # the writer reports a mismatch with the field's name
        return self.value(kind, data, namespace, where)

    def record(self, node: Mapping[str, Any], data: Any, namespace: str, where: str) -> Any:
        if not isinstance(data, dict):
            return data  # the writer reports the mismatch with the field's name
        fields = {f["name"]: f for f in node["fields"]}
        return {
            key: self.value(fields[key]["type"], item, namespace, f"{where}.{key}")
            if key in fields
            else item
            for key, item in data.items()
        }

    def _named_or_primitive(self, name: str, data: Any, namespace: str, where: str) -> Any:
        if name == "bytes" and isinstance(data, str):
            return _b64(data, where)
        found = self.named.get(name) or self.named.get(f"{namespace}.{name}")
        return data if found is None else self.value(found, data, namespace, where)

    def _union(self, branches: list[Any], data: Any, namespace: str, where: str) -> Any:
        if data is None:
            return None
        for branch in branches:
            if branch == "null":
                continue
            try:
                return self.value(branch, data, namespace, where)
            except ConfigError:
                continue
        return data


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: bytes are given as base64") from exc


def _logical(logical: str, data: Any, where: str) -> Any:
    try:
        if logical == "date" and isinstance(data, str):
            return dt.date.fromisoformat(data)
        if logical.startswith("timestamp") and isinstance(data, str):
            moment = dt.datetime.fromisoformat(data.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        if logical == "decimal" and isinstance(data, str | int | float):
            return decimal.Decimal(str(data))
    except (ValueError, decimal.InvalidOperation) as exc:
        raise ConfigError(f"{where}: {data!r} is not a valid {logical}") from exc
    return data


def from_json(definition: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (parsed JSON) with the values the record schema ``definition`` expects."""
    name = str(definition.get("name", ""))
    namespace = str(definition.get("namespace", name.rpartition(".")[0]))
    converted = _Reader().value(definition, data, namespace, "payload")
    assert isinstance(converted, dict)
    return converted


def to_json(value: Any) -> Any:
    """A decoded Avro value as plain JSON data."""
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
