"""``exchange connector check`` binds the connector to the catalog as ``run`` does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from exchange.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "catalog" / "demo"
QUERY = "SELECT code AS postal_code, city FROM addresses WHERE code = :{param}"


@pytest.fixture(autouse=True)
def _schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_SCHEMAS_PATH", str(ROOT / "schemas"))


def _sql_config(tmp_path: Path, param: str) -> Path:
    database = tmp_path / "post.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE IF NOT EXISTS addresses (code TEXT PRIMARY KEY, city TEXT)")
    path = tmp_path / "post.yaml"
    raw = {
        "kind": "sql",
        "name": "post-addresses",
        "agency": "POST",
        "url": f"sqlite+aiosqlite:///{database}",
        "services": [{"service": "post.address.lookup.v1", "query": QUERY.format(param=param)}],
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def _check(config: Path) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(app, ["connector", "check", str(config), "--catalog", str(DEMO)])
    return result.exit_code, result.stderr.splitlines(), result.stdout


def test_sql_parameter_that_is_no_request_field_is_refused_by_check(tmp_path: Path) -> None:
    """A query parameter naming no field of the service's request: exit 1, one line for it."""
    config = _sql_config(tmp_path, "post_code")
    code, lines, _out = _check(config)
    assert code == 1
    assert lines == [
        f"{config}: services[0].query: :post_code is not a request field of "
        "post.address.lookup.v1; map it in params",
        f"{config}: 1 problem(s)",
    ]


def test_sql_config_bound_to_request_fields_passes_check(tmp_path: Path) -> None:
    """Parameters named after request fields bind, and the database is reached: exit 0."""
    code, lines, out = _check(_sql_config(tmp_path, "postal_code"))
    assert (code, lines) == (0, [])
    assert "ok: post-addresses (sql)" in out


def test_unknown_service_is_one_line_even_when_bind_finds_it_too(tmp_path: Path) -> None:
    """The services check and bind() both see a service not in the catalog: it is told once."""
    config = _sql_config(tmp_path, "postal_code")
    config.write_text(config.read_text().replace("post.address.lookup.v1", "post.nothing.v1"))
    code, lines, _out = _check(config)
    assert code == 1
    assert lines == [
        f"{config}: services[0].service: post.nothing.v1 is not in the catalog",
        f"{config}: 1 problem(s)",
    ]


def test_filedrop_service_not_in_the_catalog_is_refused_by_check(tmp_path: Path) -> None:
    """A filedrop batch rule naming an unknown service fails at check, not only at run."""
    config = tmp_path / "batch.yaml"
    raw = {
        "kind": "filedrop",
        "name": "tax-batch",
        "agency": "TAX",
        "folder": str(tmp_path),
        "batches": [{"pattern": "*.csv", "service": "no.such.v1", "purpose": "tax-registration"}],
    }
    config.write_text(yaml.safe_dump(raw))
    code, lines, _out = _check(config)
    assert code == 1
    assert lines == [
        f"{config}: batches[0].service: no.such.v1 not in the catalog",
        f"{config}: 1 problem(s)",
    ]
