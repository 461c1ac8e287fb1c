"""Legacy values → payload values, by the service's Avro request schema (pure).

Two sources. **Text** (a CSV cell, an XML element: :func:`field_readers`) holds text where the
payload needs what the schema says. **JSON** (an outbox row's payload: :func:`from_json`) has
numbers, booleans, objects and arrays already, but dates, timestamps and decimals arrive as
text. Per type, text is read as::

    string, enum, uuid       the text as it is
    int, long                decimal digits (``-`` allowed)
    float, double            Python float syntax
    boolean                  true/false, 1/0, yes/no (any case)
    date                     ISO 8601 ``YYYY-MM-DD``
    timestamp-millis/micros  ISO 8601 with an offset or ``Z`` (no offset: UTC)
    decimal                  decimal text
    record, array, map       JSON text
    ["null", T]              empty text → null, else as T

:class:`CellError` says why a value cannot be read (filedrop puts it on the row's line in
the ``.errors`` file). :func:`from_json` converts what it can and leaves the rest as it is,
for the client's schema check to refuse with a reason.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["CellError", "FieldReader", "field_readers", "from_json"]

_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})
_NAMED = frozenset({"record", "enum", "fixed"})


class CellError(ValueError):
    """A cell's text does not fit its field's type."""


class FieldReader:
    """Reads the text of one top-level field of a record schema."""

    def __init__(self, name: str, avro_type: Any, named: Mapping[str, Any], *, required: bool):
        self.name = name
        self.required = required
        self._type = avro_type
        self._named = named

    def read(self, text: str) -> Any:
        """The field's value for ``text``; :class:`CellError` if it does not fit."""
        return _read(self._type, text, self._named)


def field_readers(definition: Mapping[str, Any]) -> dict[str, FieldReader]:
    """One reader per top-level field of a record schema's JSON definition, by field name.

    ``required`` is false for fields with a default (a missing cell takes the default).
    """
    named: dict[str, Any] = {}
    _collect_named(definition, definition.get("namespace"), named)
    return {
        field["name"]: FieldReader(
            field["name"], field["type"], named, required="default" not in field
        )
        for field in definition["fields"]
    }


def from_json(definition: Mapping[str, Any], payload: Any) -> Any:
    """``payload`` (decoded JSON) with text turned into the dates, timestamps and decimals
    ``definition`` (a record schema) asks for; anything that does not fit is left as it is."""
    named: dict[str, Any] = {}
    _collect_named(definition, definition.get("namespace"), named)
    return _json(definition, payload, named)


def _json(avro_type: Any, value: Any, named: Mapping[str, Any]) -> Any:
    if isinstance(avro_type, list):
        others = [branch for branch in avro_type if branch != "null"]
        if value is None or len(others) != 1:
            return value
        return _json(others[0], value, named)
    if isinstance(avro_type, str):
        return _json(named[avro_type], value, named) if avro_type in named else value
    logical = avro_type.get("logicalType")
    if logical in _LOGICAL and logical != "uuid" and isinstance(value, str):
        try:
            return _LOGICAL[logical](value)
        except CellError:
            return value
    return _json_complex(avro_type, value, named)


def _json_complex(avro_type: Mapping[str, Any], value: Any, named: Mapping[str, Any]) -> Any:
    kind = avro_type.get("type")
    if kind == "record" and isinstance(value, Mapping):
        fields = {field["name"]: field["type"] for field in avro_type.get("fields", ())}
        return {
            key: _json(fields[key], item, named) if key in fields else item
            for key, item in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [_json(avro_type["items"], item, named) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {key: _json(avro_type["values"], item, named) for key, item in value.items()}
    if isinstance(kind, Mapping | list):
        return _json(kind, value, named)
    return value


def _collect_named(avro_type: Any, namespace: str | None, into: dict[str, Any]) -> None:
    """Index named types by short and full name, so references like ``"NameMatch"`` resolve."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            _collect_named(branch, namespace, into)
        return
    if not isinstance(avro_type, Mapping):
        return
    kind = avro_type.get("type")
    if kind in _NAMED:
        name = avro_type["name"]
        space = avro_type.get("namespace", namespace)
        into[name.rsplit(".", 1)[-1]] = avro_type
        into[name if "." in name or not space else f"{space}.{name}"] = avro_type
        namespace = space
    for field in avro_type.get("fields", ()):
        _collect_named(field["type"], namespace, into)
    for key in ("items", "values"):
        if key in avro_type:
            _collect_named(avro_type[key], namespace, into)
    if isinstance(kind, Mapping | list):
        _collect_named(kind, namespace, into)


def _read(avro_type: Any, text: str, named: Mapping[str, Any]) -> Any:
    if isinstance(avro_type, list):
        return _read_union(avro_type, text, named)
    if isinstance(avro_type, str):
        if avro_type in named:
            return _read(named[avro_type], text, named)
        return _read_primitive(avro_type, text)
    return _read_complex(avro_type, text, named)


def _read_complex(avro_type: Mapping[str, Any], text: str, named: Mapping[str, Any]) -> Any:
    logical = avro_type.get("logicalType")
    if logical is not None and logical in _LOGICAL:
        return _LOGICAL[logical](text)
    kind = avro_type["type"]
    if kind == "enum":
        return text
    if kind in ("record", "array", "map"):
        return _read_json(text)
    return _read(kind, text, named)


def _read_union(branches: list[Any], text: str, named: Mapping[str, Any]) -> Any:
    if "null" in branches and text == "":
        return None
    others = [branch for branch in branches if branch != "null"]
    if len(others) != 1:
        raise CellError("unions of several non-null types cannot be read from text")
    return _read(others[0], text, named)


def _read_primitive(kind: str, text: str) -> Any:
    if kind == "string":
        return text
    if text == "":
        raise CellError(f"empty, but a {kind} is required")
    try:
        return _PRIMITIVES[kind](text)
    except KeyError:
        raise CellError(f"a {kind} field cannot be read from text") from None
    except ValueError as exc:
        raise CellError(f"not a {kind}: {_short(text)}") from exc


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CellError(f"not an ISO 8601 timestamp: {_short(text)}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise CellError(f"not an ISO 8601 date (YYYY-MM-DD): {_short(text)}") from exc


def _decimal(text: str) -> decimal.Decimal:
    try:
        return decimal.Decimal(text.strip())
    except decimal.InvalidOperation as exc:
        raise CellError(f"not a decimal number: {_short(text)}") from exc


def _read_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CellError(f"not JSON ({exc.args[0] if exc.args else 'syntax'})") from exc


def _short(text: str) -> str:
    """The offending text in a message, cut short (a cell may be long, or personal)."""
    return repr(text if len(text) <= 20 else text[:20] + "…")


_PRIMITIVES: dict[str, Any] = {
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": _boolean,
}
_LOGICAL: dict[str, Any] = {
    "date": _date,
    "timestamp-millis": _timestamp,
    "timestamp-micros": _timestamp,
    "decimal": _decimal,
    "uuid": str,
}
