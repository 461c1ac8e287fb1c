"""``exchange catalog``: validate, show and publish the catalog of agencies, services and policies.

``check`` exits 0 on a valid catalog with a one-line summary, and 1 on an invalid one with
each problem on its own line as ``file:line:column: message`` (the form editors and CI
annotations understand). ``publish`` runs the same validation (an invalid catalog is refused
with the same lines and exit 1), then writes a snapshot to ``<prefix>.catalog`` for the running
workers and prints its version; publishing the version already there writes nothing. Paths
default to ``EXCHANGE_CATALOG_PATH`` / ``EXCHANGE_SCHEMAS_PATH``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from exchange._catalog import Catalog, load_catalog
from exchange._catalog_topic import CatalogSnapshot, publish_snapshot, read_snapshot
from exchange._errors import CatalogError, ConfigError
from exchange._settings import ExchangeSettings
from exchange._topology import Topics
from exchange.cli._common import load_settings

app = typer.Typer(
    name="catalog",
    help="Validate, show and publish the catalog of agencies, services and policies.",
    no_args_is_help=True,
)

PathArgument = typer.Argument(None, help="Catalog folder (default: EXCHANGE_CATALOG_PATH).")
SchemasOption = typer.Option(
    None, "--schemas", help="Schemas folder (default: EXCHANGE_SCHEMAS_PATH)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")


def catalog_paths(path: Path | None, schemas: Path | None) -> tuple[Path, Path]:
    """The catalog and schemas folders: as given, else from the settings."""
    if path is not None and schemas is not None:
        return path, schemas
    try:
        settings = ExchangeSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "_".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"EXCHANGE_{field}: {first['msg']}") from exc
    return path or settings.catalog_path, schemas or settings.schemas_path


def load_or_exit(path: Path, schemas: Path, *, as_json: bool) -> Catalog:
    """Load the catalog, or print every problem and exit 1."""
    try:
        return load_catalog(path, schemas)
    except CatalogError as exc:
        _exit_with_problems(path, exc, as_json=as_json)


def _exit_with_problems(path: Path, exc: CatalogError, *, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"valid": False, "problems": exc.problems}, indent=2))
    else:
        for problem in exc.problems:
            typer.echo(problem)
        typer.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
    raise typer.Exit(1) from exc


@app.command()
def check(
    path: Path | None = PathArgument,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """Validate the catalog; print every problem with its file and line."""
    path, schemas = catalog_paths(path, schemas)
    catalog = load_or_exit(path, schemas, as_json=as_json)
    counts = {
        "agencies": len(catalog.agencies),
        "services": len(catalog.services),
        "policies": len(catalog.policies),
    }
    if as_json:
        typer.echo(json.dumps({"valid": True, **counts}, indent=2))
    else:
        summary = ", ".join(f"{count} {name}" for name, count in counts.items())
        typer.echo(f"{path}: valid ({summary})")


@app.command()
def publish(
    path: Path | None = PathArgument,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """Validate the catalog and publish it to the running workers (no restart needed)."""
    path, schemas = catalog_paths(path, schemas)
    try:
        snapshot = read_snapshot(path, schemas)
    except CatalogError as exc:
        _exit_with_problems(path, exc, as_json=as_json)
    settings = load_settings()
    topic = Topics.for_settings(settings).catalog
    written = asyncio.run(publish_snapshot(settings, topic, snapshot))
    if as_json:
        typer.echo(json.dumps(_published(snapshot, topic, written), indent=2))
    elif written:
        typer.echo(f"published catalog version {snapshot.version} to {topic}")
    else:
        typer.echo(f"catalog version {snapshot.version} is already the latest on {topic}")


def _published(snapshot: CatalogSnapshot, topic: str, written: bool) -> dict[str, Any]:
    return {
        "version": snapshot.version,
        "topic": topic,
        "published": written,
        "published_at": snapshot.published_at.isoformat() if written else None,
        "files": len(snapshot.files),
    }


@app.command()
def show(
    path: Path | None = PathArgument,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the agencies, services and policies of the catalog."""
    path, schemas = catalog_paths(path, schemas)
    catalog = load_or_exit(path, schemas, as_json=as_json)
    if as_json:
        typer.echo(json.dumps(_as_json(catalog), indent=2))
        return
    console = Console()
    for table in (_agency_table(catalog), _service_table(catalog), _policy_table(catalog)):
        console.print(table)


def _as_json(catalog: Catalog) -> dict[str, Any]:
    data = catalog.model_dump(mode="json")
    for service, dumped in zip(catalog.services, data["services"], strict=True):
        dumped["id"] = service.id
    return data


def _agency_table(catalog: Catalog) -> Table:
    table = Table("code", "name", "subsystems", title="Agencies", title_justify="left")
    for agency in catalog.agencies:
        subsystems = ", ".join(sub.code for sub in agency.subsystems)
        table.add_row(agency.code, agency.name, subsystems)
    return table


def _service_table(catalog: Catalog) -> Table:
    table = Table(title="Services", title_justify="left")
    for column in ("service", "provider", "title", "deadline s", "class", "mode", "answer", "revs"):
        table.add_column(column, no_wrap=column != "title")
    for s in catalog.services:
        table.add_row(
            s.id,
            s.provider_ref,
            s.title,
            f"{s.default_deadline_seconds:g}/{s.max_deadline_seconds:g}",
            s.classification,
            s.compatibility,
            s.answer_mode,
            f"{len(s.request_schemas)}/{len(s.response_schemas)}",
        )
    return table


def _policy_table(catalog: Catalog) -> Table:
    table = Table("requester", "service", "purposes", title="Policies", title_justify="left")
    for policy in catalog.policies:
        purposes = ", ".join(purpose.code for purpose in policy.purposes)
        table.add_row(policy.requester_ref, policy.service, purposes)
    return table
