"""The shipped service payload schemas: valid Avro, documented, and following the conventions."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.utils import generate_many

from exchange._catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "schemas" / "services"
FILES = sorted(SERVICES.glob("*/*.avsc"))
MONEY_WORDS = ("owed", "amount", "capital")


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _named_types(schema: Any) -> Iterator[dict[str, Any]]:
    """Every record, enum and fixed defined anywhere in the schema."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            yield schema
        for field in schema.get("fields", []):
            yield from _named_types(field["type"])
        for key in ("items", "values"):
            if key in schema:
                yield from _named_types(schema[key])


def _fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for named in _named_types(schema):
        for field in named.get("fields", []):
            yield f"{named['name']}.{field['name']}", field


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_there_are_schemas() -> None:
    """Six services or more ship schemas."""
    assert len({path.parent for path in FILES}) >= 6


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_schema_parses_with_fastavro_and_apache_avro(path: Path) -> None:
    """Each schema is valid for both Avro libraries the project uses."""
    text = path.read_text(encoding="utf-8")
    parse_schema(json.loads(text), named_schemas={})
    avro.schema.parse(text)


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_field_and_named_type_has_a_doc(path: Path) -> None:
    """Every field, record and enum carries a non-empty doc."""
    schema = _load(path)
    undocumented = [name for name, field in _fields(schema) if not field.get("doc", "").strip()]
    undocumented += [n["name"] for n in _named_types(schema) if not n.get("doc", "").strip()]
    assert undocumented == []


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_enum_has_a_default(path: Path) -> None:
    """Enums name a default symbol, so readers survive symbols added later."""
    for named in _named_types(_load(path)):
        if named["type"] == "enum":
            assert named.get("default") in named["symbols"], named["name"]


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_money_is_decimal(path: Path) -> None:
    """Amounts of money use the decimal logical type, never float or double."""
    for name, field in _fields(_load(path)):
        if any(word in name.rsplit(".", 1)[1] for word in MONEY_WORDS):
            assert field["type"].get("logicalType") == "decimal", name


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_namespace_follows_the_service_id(path: Path) -> None:
    """Records live in namespace ir.gov.<code>.v<version>, named after their role."""
    schema = _load(path)
    assert schema["namespace"] == f"ir.gov.{path.parent.name}"
    suffix = "Request" if path.name.startswith("request-") else "Response"
    assert schema["name"].endswith(suffix)


def test_catalog_fingerprints_are_crc64_of_the_canonical_form(demo: Catalog) -> None:
    """SchemaRevision.fingerprint is the single-object header's 8 bytes for that schema."""
    for service in demo.services:
        for rev in (*service.request_schemas, *service.response_schemas):
            parsed = parse_schema(_load(rev.path), named_schemas={})
            expected = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
            assert rev.fingerprint.hex() == expected


def test_old_data_reads_with_every_newer_revision(demo: Catalog) -> None:
    """Records written with each revision decode with every later one (schema resolution)."""
    for service in demo.services:
        for revisions in (service.request_schemas, service.response_schemas):
            parsed = [parse_schema(_load(rev.path), named_schemas={}) for rev in revisions]
            for index, writer in enumerate(parsed):
                for record in generate_many(writer, 5):
                    buffer = io.BytesIO()
                    schemaless_writer(buffer, writer, record)
                    for reader in parsed[index:]:
                        buffer.seek(0)
                        schemaless_reader(buffer, writer, reader)
