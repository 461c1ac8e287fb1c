"""``exchange schemas``: list services' payload schemas and run the evolution gate.

``check`` runs every reader/writer check that each service's compatibility mode calls for
(``exchange/_compat.py``) and exits 1 if any pair is incompatible, naming the service, the
revisions and the checker's reason. The catalog is loaded (and must be valid) first.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from exchange._errors import ConfigError
from exchange.cli._catalog import JsonOption, SchemasOption, catalog_paths, load_or_exit

app = typer.Typer(
    name="schemas",
    help="List services' payload schemas and check their evolution.",
    no_args_is_help=True,
)

CatalogOption = typer.Option(
    None, "--catalog", help="Catalog folder (default: EXCHANGE_CATALOG_PATH)."
)


@app.command()
def check(
    catalog_path: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """Check that every service's schema revisions are compatible under its mode."""
    try:
        from exchange._compat import check_catalog_schemas
    except ImportError as exc:  # Apache Avro is a development dependency
        raise ConfigError("the schema gate needs Apache Avro: pip install 'avro>=1.12'") from exc

    path, schemas = catalog_paths(catalog_path, schemas)
    catalog = load_or_exit(path, schemas, as_json=as_json)
    checks = check_catalog_schemas(catalog)
    failed = [c for c in checks if not c.compatible]
    if as_json:
        report = [{**asdict(c), "compatible": c.compatible} for c in checks]
        typer.echo(json.dumps({"compatible": not failed, "checks": report}, indent=2))
    else:
        for item in failed:
            typer.echo(str(item))
        typer.echo(
            f"{len(checks)} check(s) over {len(catalog.services)} service(s): "
            f"{len(failed)} incompatible",
            err=bool(failed),
        )
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_schemas(
    catalog_path: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """List every schema revision of every service, with its full name and fingerprint."""
    path, schemas = catalog_paths(catalog_path, schemas)
    catalog = load_or_exit(path, schemas, as_json=as_json)
    rows: list[dict[str, Any]] = [
        {
            "service": service.id,
            "compatibility": str(service.compatibility),
            "role": rev.role,
            "revision": rev.revision,
            "full_name": rev.full_name,
            "fingerprint": rev.fingerprint.hex(),
            "path": str(rev.path),
        }
        for service in catalog.services
        for rev in (*service.request_schemas, *service.response_schemas)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    for column in ("service", "role", "rev", "record", "fingerprint"):
        table.add_column(column, no_wrap=column != "record", overflow="fold")
    for row in rows:
        record = str(row["full_name"]).rpartition(".")[2]
        table.add_row(row["service"], row["role"], str(row["revision"]), record, row["fingerprint"])
    Console().print(table)
