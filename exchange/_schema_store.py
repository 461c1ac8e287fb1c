"""Avro schemas as the bus knows them: fingerprints, safety checks, and the schema store.

A schema's fingerprint is CRC-64-AVRO (Avro specification, "Schema Fingerprints") of its
Parsing Canonical Form, written little-endian: the 8 bytes after ``C3 01`` in a single-object
encoded record. The store loads self-contained ``.avsc`` files (named types defined inline at
first use) and indexes them by fingerprint and by full name. It refuses schemas that would let
a few hostile bytes cost unbounded time or stack when decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro.schema import parse_schema, to_parsing_canonical_form

from exchange._errors import SchemaError, UnknownSchemaError
from exchange._wire import SINGLE_OBJECT_MAGIC

__all__ = [
    "CRC64_AVRO_EMPTY",
    "Schema",
    "SchemaStore",
    "canonical_form",
    "crc64_avro",
    "fingerprint",
]

# --- CRC-64-AVRO (Avro specification, "Schema Fingerprints") ----------------------------------
#: The fingerprint of the empty byte string; also the polynomial of the Rabin fingerprint.
CRC64_AVRO_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The 64-bit Rabin fingerprint the Avro specification calls CRC-64-AVRO (unsigned)."""
    fp = CRC64_AVRO_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def canonical_form(schema: Mapping[str, Any] | str) -> str:
    """The Parsing Canonical Form of a schema (a JSON text or an already loaded JSON value)."""
    return str(to_parsing_canonical_form(_as_json(schema)))


def fingerprint(schema: Mapping[str, Any] | str) -> bytes:
    """The 8 fingerprint bytes as they follow ``C3 01`` on the wire (little-endian)."""
    return crc64_avro(canonical_form(schema).encode("utf-8")).to_bytes(8, "little")


def _as_json(schema: Mapping[str, Any] | str) -> Any:
    return json.loads(schema) if isinstance(schema, str) else schema


# --- Schemas ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Schema:
    """One parsed writer/reader schema, as the store knows it."""

    #: Full Avro name of the top-level record (``exchange.v1.InquiryRequest``).
    name: str
    #: CRC-64-AVRO of the canonical form, little-endian: the wire's bytes 2..9.
    fingerprint: bytes
    canonical_form: str
    #: The schema's JSON as written (docs, defaults, logical types included).
    definition: Mapping[str, Any]
    #: fastavro's parsed form, reused on every call (parsing is the expensive part).
    parsed: Any = field(repr=False)
    #: Full names this record also answers to as a reader (Avro ``aliases``).
    aliases: frozenset[str] = frozenset()
    #: Where the schema was loaded from, for messages.
    source: str | None = None

    @classmethod
    def parse(cls, definition: Mapping[str, Any] | str, *, source: str | None = None) -> Schema:
        """Parse and check one self-contained schema; :class:`SchemaError` if it is unusable."""
        where = source or "schema"
        try:
            loaded = _as_json(definition)
            parsed = parse_schema(loaded)
            canonical = str(to_parsing_canonical_form(loaded))
        except Exception as exc:  # fastavro raises many kinds (SchemaParseException, KeyError …)
            raise SchemaError(f"{where}: not a valid Avro schema: {exc}") from exc
        if not isinstance(loaded, Mapping) or loaded.get("type") != "record":
            raise SchemaError(f"{where}: the top-level type must be a named record")
        _check_decodable(loaded, where)
        name = _full_name(loaded["name"], loaded.get("namespace"))
        namespace = name.rpartition(".")[0] or None
        aliases = frozenset(_full_name(a, namespace) for a in loaded.get("aliases", ()))
        return cls(
            name=name,
            fingerprint=crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little"),
            canonical_form=canonical,
            definition=loaded,
            parsed=parsed,
            aliases=aliases,
            source=source,
        )

    @property
    def header(self) -> bytes:
        """The 10 bytes that open every record written with this schema."""
        return SINGLE_OBJECT_MAGIC + self.fingerprint


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


_PRIMITIVE_MIN_SIZE = {
    "null": 0, "boolean": 1, "int": 1, "long": 1, "float": 4, "double": 8,
    "bytes": 1, "string": 1,
}  # fmt: skip


def _check_decodable(schema: Mapping[str, Any], where: str) -> None:
    """Refuse schemas that let a few hostile bytes cost unbounded time or stack.

    A recursive type lets each byte open one more level of nesting: fastavro's compiled reader
    then overflows the C stack (a crash, not an exception). An array whose items encode in zero
    bytes lets a 10-byte record declare 2**63 items. Neither has a use in an inquiry.
    """
    _SizeWalker(where).size(schema, None)


class _SizeWalker:
    """Computes the fewest bytes a value of a type can encode in, raising on unsafe types."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.named: dict[str, int] = {}
        self.open: list[str] = []  # records being walked: meeting one again means recursion

    def size(self, node: Any, namespace: str | None) -> int:
        if isinstance(node, str):
            return self._reference(node, namespace)
        if isinstance(node, list):
            for branch in node:
                self.size(branch, namespace)
            return 1  # the branch index
        kind = node["type"]
        if kind in ("record", "error", "enum", "fixed"):
            return self._named(node, namespace)
        if kind == "array" and self.size(node["items"], namespace) == 0:
            raise SchemaError(f"{self.where}: an array of zero-byte items cannot be bounded")
        if kind == "map":
            self.size(node["values"], namespace)
        if kind in ("array", "map"):
            return 1  # the block count
        return self.size(kind, namespace)

    def _reference(self, node: str, namespace: str | None) -> int:
        if node in _PRIMITIVE_MIN_SIZE:
            return _PRIMITIVE_MIN_SIZE[node]
        name = _full_name(node, namespace)
        if name in self.open:
            raise SchemaError(f"{self.where}: recursive type {name} is not supported")
        return self.named.get(name, 1)

    def _named(self, node: Mapping[str, Any], namespace: str | None) -> int:
        name = _full_name(node["name"], node.get("namespace", namespace))
        if node["type"] == "enum":
            size = 1
        elif node["type"] == "fixed":
            size = int(node["size"])
        else:
            inner = name.rpartition(".")[0] or None
            self.open.append(name)
            size = sum(self.size(f["type"], inner) for f in node["fields"])
            self.open.pop()
        self.named[name] = size
        return size


_NUMBERS = re.compile(r"(\d+)")


def _natural_key(path: Path) -> list[Any]:
    """Sort ``request-10`` after ``request-2``: later revisions load later and win by name."""
    return [int(part) if part.isdigit() else part for part in _NUMBERS.split(path.as_posix())]


class SchemaStore:
    """Every schema the bus knows, indexed by fingerprint and by full name.

    Several schemas may share a full name (revisions of one record); :meth:`get` returns the
    current one, the last added, which with :meth:`from_directory` is the highest revision
    number. Writers write with the current schema; readers resolve any known revision to it.
    """

    def __init__(self, schemas: Iterable[Schema] = ()) -> None:
        self._by_fingerprint: dict[bytes, Schema] = {}
        self._by_name: dict[str, list[Schema]] = {}
        self._current: dict[str, Schema] = {}
        for schema in schemas:
            self.add(schema)

    @classmethod
    def from_directory(cls, root: Path | str) -> SchemaStore:
        """Load every ``*.avsc`` under ``root`` (recursively); :class:`SchemaError` on failure."""
        store = cls()
        store.load_directory(root)
        return store

    def load_directory(self, root: Path | str) -> list[Schema]:
        """Add every ``*.avsc`` under ``root``, in natural path order."""
        root = Path(root)
        if not root.is_dir():
            raise SchemaError(f"{root}: no such schema folder")
        return [self.load_file(path) for path in sorted(root.rglob("*.avsc"), key=_natural_key)]

    def load_file(self, path: Path | str) -> Schema:
        """Add the schema in one ``.avsc`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{path}: cannot read: {exc}") from exc
        return self.add(Schema.parse(text, source=str(path)))

    def add(
        self,
        schema: Schema | Mapping[str, Any] | str,
        *,
        source: str | None = None,
        current: bool = True,
    ) -> Schema:
        """Add one schema; adding the same canonical form again returns the known entry.

        With ``current=False`` the schema is known by fingerprint (records written with it
        decode) but :meth:`get` keeps returning the name's current schema.
        """
        if not isinstance(schema, Schema):
            schema = Schema.parse(schema, source=source)
        known = self._by_fingerprint.get(schema.fingerprint)
        if known is not None:
            return known
        self._by_fingerprint[schema.fingerprint] = schema
        self._by_name.setdefault(schema.name, []).append(schema)
        if current or schema.name not in self._current:
            self._current[schema.name] = schema
        return schema

    def get(self, name: str) -> Schema:
        """The current schema called ``name`` (the last added); :class:`UnknownSchemaError`."""
        schema = self._current.get(name)
        if schema is None:
            raise UnknownSchemaError(f"no schema named {name}")
        return schema

    def versions(self, name: str) -> tuple[Schema, ...]:
        """Every schema called ``name``, oldest first."""
        return tuple(self._by_name.get(name, ()))

    def by_fingerprint(self, fp: bytes) -> Schema:
        """The schema with this 8-byte fingerprint; :class:`UnknownSchemaError` if none."""
        schema = self._by_fingerprint.get(bytes(fp))
        if schema is None:
            raise UnknownSchemaError(f"no schema has fingerprint {bytes(fp).hex()}")
        return schema

    def names(self) -> list[str]:
        """The full names known, sorted."""
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Schema]:
        return iter(self._by_fingerprint.values())

    def __len__(self) -> int:
        return len(self._by_fingerprint)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
