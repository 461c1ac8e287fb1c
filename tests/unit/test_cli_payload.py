"""Command-line payloads and provider loading, without a broker."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from exchange import ConfigError, ExchangeSettings
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache, with_defaults
from exchange.cli._app import app
from exchange.cli._payload import from_json, read_json_argument, to_json
from exchange.cli._provide import load_providers
from exchange.cli._tail import mask

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
CATALOG = ROOT / "catalog" / "demo"


def _schemas(service: str) -> ServiceCache:
    codec = Codec(SchemaStore.from_directory(SCHEMAS))
    cache = ServiceCache(load_catalog(CATALOG, SCHEMAS), codec)
    cache.get(service)
    return cache


def test_json_request_becomes_avro_values() -> None:
    """A date string becomes a date; the result encodes with the service's request schema."""
    cache = _schemas("nocr.person.verify.v1")
    schema = cache.get("nocr.person.verify.v1").request
    raw = {"national_id": "0499370899", "birth_date": "1990-03-21", "first_name": "Sara"}
    converted = from_json(schema.definition, {**raw, "last_name": "Ahmadi", "father_name": "Ali"})
    assert converted["birth_date"] == dt.date(1990, 3, 21)
    assert converted["father_name"] == "Ali"
    Codec(SchemaStore.from_directory(SCHEMAS)).encode(schema, converted)


def test_json_response_with_decimals_timestamps_and_nested_records() -> None:
    """Decimals from strings, timestamps from ISO text (UTC by default), arrays of records."""
    schemas = _schemas("tax.clearance.status.v1").get("tax.clearance.status.v1")
    schema = schemas.response
    raw = {
        "taxpayer_id": "0499370899",
        "cleared": False,
        "principal_owed": "1500000",
        "penalties_owed": 0,
        "total_owed": "1500000",
        "open_assessments": 1,
        "debts": [{"tax_kind": "INCOME", "tax_year": 1402, "amount": "1500000"}],
        "checked_at": "2026-03-21T10:00:00",
    }
    converted = from_json(schema.definition, raw)
    assert converted["principal_owed"] == decimal.Decimal(1_500_000)
    assert converted["debts"][0]["amount"] == decimal.Decimal(1_500_000)
    assert converted["checked_at"] == dt.datetime(2026, 3, 21, 10, tzinfo=dt.UTC)
    full = with_defaults(schemas.response_defaults, converted)  # as the SDK fills them in
    Codec(SchemaStore.from_directory(SCHEMAS)).encode(schema, full)


def test_bad_values_are_one_clear_error() -> None:
    """An impossible date names its field."""
    schema = _schemas("nocr.person.verify.v1").get("nocr.person.verify.v1").request
    with pytest.raises(ConfigError, match=r"payload\.birth_date"):
        from_json(schema.definition, {"birth_date": "21/03/1990"})


def test_payload_argument_reads_json_or_a_file(tmp_path: Path) -> None:
    """Inline JSON and @file give the same object; a list or bad JSON is refused."""
    path = tmp_path / "p.json"
    path.write_text('{"postal_code": "1234567890"}')
    assert read_json_argument(f"@{path}") == read_json_argument('{"postal_code": "1234567890"}')
    with pytest.raises(ConfigError, match="JSON object"):
        read_json_argument("[1]")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_json_argument("{")


def test_decoded_values_print_as_json() -> None:
    """Dates, decimals and bytes turn into plain JSON data."""
    value = {"d": dt.date(2026, 1, 2), "n": decimal.Decimal("12.50"), "b": b"\x01", "l": [1]}
    assert json.loads(json.dumps(to_json(value))) == {
        "d": "2026-01-02",
        "n": "12.50",
        "b": "AQ==",
        "l": [1],
    }


def test_subjects_are_masked() -> None:
    """Two characters kept at each end, the rest starred."""
    assert mask("0499370899") == "04******99"
    assert mask("abc") == "***"


@pytest.fixture
def provider_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module on sys.path with a factory, a module-level Provider and a non-provider."""
    (tmp_path / "agency_mod.py").write_text(
        textwrap.dedent(
            f"""
            from exchange import ExchangeSettings, Provider

            def providers(*, settings, registry):
                return [Provider(agency="NOCR", settings=settings, registry=registry)]

            POST = Provider(agency="POST", settings=ExchangeSettings(
                catalog_path={str(CATALOG)!r}, schemas_path={str(SCHEMAS)!r}))
            NOT_ONE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "agency_mod"
    sys.modules.pop("agency_mod", None)


def test_load_providers_by_factory_attribute_or_default(provider_module: str) -> None:
    """MODULE uses its providers factory; MODULE:ATTR names a Provider; others are refused."""
    settings = ExchangeSettings(catalog_path=CATALOG, schemas_path=SCHEMAS)
    registry = CollectorRegistry()
    assert [p.agency for p in load_providers(provider_module, settings, registry)] == ["NOCR"]
    assert [p.agency for p in load_providers(f"{provider_module}:POST", settings, registry)] == [
        "POST"
    ]
    with pytest.raises(ConfigError, match=r"expected a Provider"):
        load_providers(f"{provider_module}:NOT_ONE", settings, registry)
    with pytest.raises(ConfigError, match="cannot import"):
        load_providers("no_such_module_here", settings, registry)


def test_provide_without_a_module_raises_a_config_error() -> None:
    """`exchange provide` of a missing module stops with a ConfigError (one line from main)."""
    result = CliRunner().invoke(app, ["provide", "no_such_module_here"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "cannot import no_such_module_here" in result.exception.message
