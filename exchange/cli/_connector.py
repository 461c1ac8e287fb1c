"""``exchange connector``: run, check, list, scaffold and describe connectors.

``run CONFIG.yaml`` runs a connector until SIGTERM/SIGINT (graceful: drain, commit, close).
``check CONFIG.yaml`` validates the file (one line per problem, with its field path), checks
the services it binds against the catalog, calls the connector's ``bind(catalog)`` as ``run``
does (``--catalog DIR`` instead of ``EXCHANGE_CATALOG_PATH``) and its ``check()`` once.
``list`` shows the built-in kinds, ``schema KIND`` prints a kind's config JSON Schema, and
``new NAME --path DIR [--kind requester]`` writes a working connector skeleton (see
``docs/connectors.md``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from exchange._catalog_model import Catalog
from exchange._errors import ConnectorConfigError, ExchangeError
from exchange._settings import ExchangeSettings
from exchange.cli._common import load_settings

app = typer.Typer(
    name="connector",
    help="Run, check, list, scaffold and describe connectors to legacy systems.",
    no_args_is_help=True,
)

ConfigArgument = typer.Argument(..., help="The connector's YAML config file.", show_default=False)
NameArgument = typer.Argument(..., help="The connector's name (letters, digits, '_' or '-').")
PathOption = typer.Option(..., "--path", help="Folder to write the skeleton into.")
ForceOption = typer.Option(False, "--force", help="Write into a folder that is not empty.")
KindOption = typer.Option("provider", "--kind", help="provider or requester.")
CatalogOption = typer.Option(
    None, "--catalog", help="Catalog folder (default EXCHANGE_CATALOG_PATH)."
)


def _load(path: Path) -> Any:
    """The connector built from ``path``; every config problem printed, then exit 1."""
    from connectors._config import load_config
    from connectors._registry import connector_class

    try:
        config = load_config(path)
    except ConnectorConfigError as exc:
        if not exc.problems:
            raise
        for problem in exc.problems:
            typer.echo(f"{path}: {problem}", err=True)
        typer.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(1) from exc
    return connector_class(config.kind)(config)


@app.command()
def run(config: Path = ConfigArgument) -> None:
    """Run the connector CONFIG describes until SIGTERM or SIGINT."""
    from connectors._runtime import run_connector

    settings = load_settings(quiet=False)
    connector = _load(config)
    asyncio.run(run_connector(connector, settings))


@app.command()
def check(config: Path = ConfigArgument, catalog: Path | None = CatalogOption) -> None:
    """Validate CONFIG, bind it to the catalog, and reach the legacy system once."""
    connector = _load(config)
    _bind(config, connector, load_settings(catalog_path=catalog))
    try:
        asyncio.run(_reach(connector))
    except ExchangeError as exc:
        typer.echo(
            f"{config}: {connector.config.name} cannot reach its legacy system: {exc.message}",
            err=True,
        )
        raise typer.Exit(1) from exc
    typer.echo(
        f"{config}: ok: {connector.config.name} ({connector.config.kind}) is valid and "
        "reaches its legacy system"
    )


def _bind(path: Path, connector: Any, settings: ExchangeSettings) -> None:
    """Check the bound services and call ``bind(catalog)`` as ``run`` does, so what it refuses
    (an sql parameter that is no request field, a filedrop service not in the catalog) shows
    here: one line per problem, then exit 1."""
    from connectors._config import ProviderConfig
    from exchange._catalog import load_catalog

    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    problems = []
    if isinstance(connector.config, ProviderConfig):
        problems = _service_problems(connector.config, catalog)
    try:
        connector.bind(catalog)
    except ConnectorConfigError as exc:
        # bind() may find what the services check found already: one line per field path.
        seen = {_field(problem) for problem in problems}
        problems += [p for p in exc.problems or [exc.message] if _field(p) not in seen]
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)
    if problems:
        typer.echo(f"{path}: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)


def _field(problem: str) -> str:
    """``services[0].query`` of ``services[0].query: :x is not a request field``."""
    return problem.split(": ", 1)[0]


def _service_problems(config: Any, catalog: Catalog) -> list[str]:
    problems = []
    for index, binding in enumerate(config.services):
        found = catalog.service(binding.service)
        if found is None:
            problems.append(f"services[{index}].service: {binding.service} is not in the catalog")
        elif found.provider != config.agency:
            problems.append(
                f"services[{index}].service: {binding.service} is provided by "
                f"{found.provider}, not {config.agency}"
            )
    return problems


async def _reach(connector: Any) -> None:
    await connector.start()
    try:
        await connector.check()
    finally:
        await connector.close()


@app.command(name="list")
def list_() -> None:
    """Show the built-in connector kinds (and installed ones)."""
    from importlib.metadata import entry_points

    from connectors._registry import BUILTINS, ENTRY_POINT_GROUP

    table = Table("kind", "role", "what it does", box=None, pad_edge=False)
    for kind, builtin in BUILTINS.items():
        table.add_row(kind, builtin.role, builtin.summary)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        table.add_row(entry.name, "installed", entry.value)
    Console(soft_wrap=True).print(table)


@app.command()
def schema(kind: str = typer.Argument(..., help="A connector kind (see `list`).")) -> None:
    """Print the JSON Schema of KIND's config."""
    from connectors._registry import config_class

    typer.echo(json.dumps(config_class(kind).model_json_schema(), indent=2))


@app.command()
def new(
    name: str = NameArgument,
    path: Path = PathOption,
    force: bool = ForceOption,
    kind: str = KindOption,
) -> None:
    """Write a working connector skeleton (config, mapping, README, tests) into PATH."""
    from connectors._scaffold import scaffold

    written = scaffold(name, path, force=force, settings=load_settings(), kind=kind)
    for file in written:
        typer.echo(f"wrote {file}")
    typer.echo(f"next: cd {path} && python -m pytest  (see {path / 'README.md'})")
