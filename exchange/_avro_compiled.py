"""Avro bodies written by closures compiled once per schema: the codec's fast writer.

fastavro interprets the parsed schema on every call: per field it dispatches on the type,
looks up logical types and, for a union, tries each branch. For the small envelopes the SDKs
write on every inquiry that costs about 16 µs a record; a chain of closures built once per
schema, each knowing its field's type, writes the same bytes in about 6 µs
(``docs/performance.md``).

Covered: null, boolean, int, long, float, double, bytes, string, records, enums, fixed,
unions of ``null`` and one other type, and the logical types ``uuid``, ``date``,
``timestamp-millis`` and ``timestamp-micros``, given as their underlying values. Anything
else (arrays, maps, other unions, other logical types) compiles to ``None`` and the codec
uses fastavro.

The values are *trusted*: built by the caller from values it checked (ints for times and
dates, text for ids). Nothing is validated beyond what Python itself refuses (a number where
text belongs, a symbol not in an enum); the codec's strict fastavro writer is the validating
one, for values that come from outside.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Writer", "compile_writer"]

#: Writes one value: appends its encoded parts to the list.
_Put = Callable[[Any, list[bytes]], None]
#: A compiled record writer: the record's body.
Writer = Callable[[Mapping[str, Any]], bytes]


class _UnsupportedError(Exception):
    """The schema uses something this module does not compile (fastavro writes it); never
    leaves this module."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


#: Encoded longs 0..1023: lengths, small ints and enum indexes are nearly all in this range.
_SMALL = tuple(_varint(_zigzag(i)) for i in range(1024))


def _put_long(value: int, out: list[bytes]) -> None:
    out.append(_SMALL[value] if 0 <= value < 1024 else _varint(_zigzag(value)))


def _put_bytes(value: bytes, out: list[bytes]) -> None:
    size = len(value)
    out.append(_SMALL[size] if size < 1024 else _varint(_zigzag(size)))
    out.append(value)


def _put_string(value: str, out: list[bytes]) -> None:
    _put_bytes(value.encode(), out)


def _put_boolean(value: bool, out: list[bytes]) -> None:
    out.append(b"\x01" if value else b"\x00")


def _put_null(value: None, out: list[bytes]) -> None:
    return None


_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


def _put_float(value: float, out: list[bytes]) -> None:
    out.append(_FLOAT.pack(value))


def _put_double(value: float, out: list[bytes]) -> None:
    out.append(_DOUBLE.pack(value))


_PRIMITIVES: dict[str, _Put] = {
    "null": _put_null,
    "boolean": _put_boolean,
    "int": _put_long,
    "long": _put_long,
    "float": _put_float,
    "double": _put_double,
    "bytes": _put_bytes,
    "string": _put_string,
}
#: Logical types written as their underlying value.
_LOGICAL = {
    ("string", "uuid"),
    ("int", "date"),
    ("long", "timestamp-millis"),
    ("long", "timestamp-micros"),
}


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Compiler:
    def __init__(self) -> None:
        self.named: dict[str, _Put] = {}

    def type_(self, node: Any, namespace: str | None) -> _Put:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return _PRIMITIVES[node]
            return self.named[_full_name(node, namespace)]  # KeyError: not defined before
        if isinstance(node, list):
            return self._union(node, namespace)
        kind = node["type"]
        if "logicalType" in node:
            if (kind, node["logicalType"]) not in _LOGICAL:
                raise _UnsupportedError(f"logical type {node['logicalType']}")
            return _PRIMITIVES[kind]
        named = {"record": self.record, "enum": self._enum, "fixed": self._fixed}.get(kind)
        if named is not None:
            return named(node, namespace)
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return _PRIMITIVES[kind]
        raise _UnsupportedError(f"type {kind}")

    def _union(self, branches: list[Any], namespace: str | None) -> _Put:
        if len(branches) != 2 or branches[0] != "null":
            raise _UnsupportedError("a union other than [null, T]")
        put_value = self.type_(branches[1], namespace)

        def put(value: Any, out: list[bytes]) -> None:
            if value is None:
                out.append(b"\x00")
            else:
                out.append(b"\x02")
                put_value(value, out)

        return put

    def _enum(self, node: Mapping[str, Any], namespace: str | None) -> _Put:
        codes = {symbol: _varint(_zigzag(i)) for i, symbol in enumerate(node["symbols"])}

        def put(value: str, out: list[bytes]) -> None:
            out.append(codes[value])

        self.named[_full_name(node["name"], node.get("namespace", namespace))] = put
        return put

    def _fixed(self, node: Mapping[str, Any], namespace: str | None) -> _Put:
        size = int(node["size"])

        def put(value: bytes, out: list[bytes]) -> None:
            if len(value) != size:
                raise ValueError(f"fixed of {size} bytes given {len(value)}")
            out.append(value)

        self.named[_full_name(node["name"], node.get("namespace", namespace))] = put
        return put

    def record(self, node: Mapping[str, Any], namespace: str | None) -> _Put:
        if node.get("type") != "record":
            raise _UnsupportedError("not a record")
        name = _full_name(node["name"], node.get("namespace", namespace))
        inner = name.rpartition(".")[0] or None
        fields = tuple((f["name"], self.type_(f["type"], inner)) for f in node["fields"])

        def put(value: Mapping[str, Any], out: list[bytes]) -> None:
            for field, put_field in fields:
                put_field(value[field], out)

        self.named[name] = put
        return put


def compile_writer(definition: Mapping[str, Any]) -> Writer | None:
    """A writer of the record's body from trusted plain values (logical-typed fields given
    as their underlying int or text), or ``None`` if the schema is not covered."""
    try:
        put = _Compiler().record(definition, None)
    except (_UnsupportedError, KeyError, TypeError, ValueError, AttributeError):
        return None

    def write(record: Mapping[str, Any]) -> bytes:
        out: list[bytes] = []
        put(record, out)
        return b"".join(out)

    return write
