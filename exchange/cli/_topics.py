"""``exchange topics``: create and update the topics the catalog implies; generate ACLs.

``plan`` shows what ``apply`` would change, without changing anything. ``apply`` makes the
changes and prints each one; run again, it says there is nothing to do. Adding partitions to
the co-partitioned inquiry topics needs ``--yes``: it breaks co-partitioning for inquiries in
flight, so the plan says how to drain the bus first. ``acls`` prints the ACLs the catalog
implies (no broker needed); ``acls --plan`` compares them with the cluster's and ``acls
--apply`` creates the missing ones (run with a principal that may alter ACLs: a super user).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from exchange._acls import AclBinding, Principals, catalog_acls, render_commands, to_json
from exchange._acls_plan import AclPlan
from exchange._admin import TopicAdmin, apply_plan, read_plan, settle
from exchange._settings import ExchangeSettings
from exchange._topology import Topics, TopicSpec, TopologyConfig, desired_topics
from exchange._topology_plan import Plan, plan_topology
from exchange.cli._catalog import load_or_exit
from exchange.cli._common import load_settings

app = typer.Typer(
    name="topics",
    help="Create and update the bus's topics from the catalog; generate Kafka ACLs.",
    no_args_is_help=True,
)

CatalogOption = typer.Option(
    None, "--catalog", help="Catalog folder (default: EXCHANGE_CATALOG_PATH)."
)
SchemasOption = typer.Option(
    None, "--schemas", help="Schemas folder (default: EXCHANGE_SCHEMAS_PATH)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
_DEFAULT_PRINCIPALS = Principals()


def _desired(
    settings: ExchangeSettings, catalog: Path | None, schemas: Path | None, *, as_json: bool
) -> list[TopicSpec]:
    path = catalog or settings.catalog_path
    loaded = load_or_exit(path, schemas or settings.schemas_path, as_json=as_json)
    return desired_topics(loaded, TopologyConfig.from_settings(settings))


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
def plan(
    catalog: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """Show what `apply` would change, changing nothing."""
    settings = load_settings()
    desired = _desired(settings, catalog, schemas, as_json=as_json)
    found = asyncio.run(_read(settings, desired))
    if as_json:
        _echo_json(found.to_json())
    else:
        for line in found.lines():
            typer.echo(line)


async def _read(settings: ExchangeSettings, desired: list[TopicSpec]) -> Plan:
    async with TopicAdmin.for_settings(settings) as admin:
        return await read_plan(admin, desired, settings.topic_prefix)


@app.command()
def apply(
    catalog: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    yes: bool = typer.Option(
        False, "--yes", help="Also add partitions to inquiry topics (drain the bus first)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create and update the topics so they match the catalog; print each change."""
    settings = load_settings()
    desired = _desired(settings, catalog, schemas, as_json=as_json)
    todo, remaining = asyncio.run(_apply(settings, desired, allow_repartition=yes))
    if as_json:
        report = todo.to_json()
        _echo_json({"applied": report.pop("actions"), **report, "remaining": remaining.to_json()})
        return
    for line in _applied_lines(todo):
        typer.echo(line)
    for action in remaining.actions:
        typer.echo(f"WARNING: not visible on the cluster yet: {action.describe()}", err=True)


async def _apply(
    settings: ExchangeSettings, desired: list[TopicSpec], *, allow_repartition: bool
) -> tuple[Plan, Plan]:
    async with TopicAdmin.for_settings(settings) as admin:
        todo = await read_plan(admin, desired, settings.topic_prefix)
        if todo.repartitions and not allow_repartition:
            for line in todo.lines():
                typer.echo(line, err=True)
            typer.echo(
                "refusing to add partitions to inquiry topics without --yes; nothing changed",
                err=True,
            )
            raise typer.Exit(1)
        if todo.empty:
            return todo, todo
        await apply_plan(admin, todo)
        return todo, await settle(admin, desired, settings.topic_prefix)


def _applied_lines(todo: Plan) -> list[str]:
    lines = [action.describe(done=True) for action in todo.actions] or ["nothing to do"]
    lines += [f"WARNING: {w}" for w in todo.warnings]
    lines += [f"note: {n}" for n in todo.notes]
    return lines


@app.command(name="list")
def list_topics(
    catalog: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    as_json: bool = JsonOption,
) -> None:
    """List the bus's topics on the cluster, and whether each matches the catalog."""
    settings = load_settings()
    desired = _desired(settings, catalog, schemas, as_json=as_json)
    rows = asyncio.run(_rows(settings, desired))
    if as_json:
        _echo_json(rows)
        return
    for line in _columns(rows):
        typer.echo(line)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Plain aligned columns: grep- and awk-friendly, any terminal width."""
    width = max([len("topic"), *(len(row["topic"]) for row in rows)])
    lines = [f"{'topic':<{width}}  parts  repl  cleanup  {'retention.ms':>13}  status"]
    for row in rows:
        cleanup = row["configs"].get("cleanup.policy", "-")
        retention = row["configs"].get("retention.ms", "-") if "delete" in cleanup else "-"
        lines.append(
            f"{row['topic']:<{width}}  {row['partitions'] or '-':>5}  "
            f"{row['replication_factor'] or '-':>4}  {cleanup:<7}  {retention:>13}  {row['status']}"
        )
    return lines


async def _rows(settings: ExchangeSettings, desired: list[TopicSpec]) -> list[dict[str, Any]]:
    prefix = settings.topic_prefix
    keys = {key for spec in desired for key in spec.configs}
    async with TopicAdmin.for_settings(settings) as admin:
        actual = await admin.describe(await admin.topic_names(prefix), keys)
    differing = {a.topic for a in plan_topology(desired, actual, prefix=prefix).actions}
    wanted = {spec.name for spec in desired}
    rows = []
    for name in sorted(wanted | set(actual)):
        found = actual.get(name)
        parsed = Topics(prefix).parse(name)
        rows.append(
            {
                "topic": name,
                "kind": parsed[0].value if parsed else None,
                "agency": parsed[1] if parsed else None,
                "partitions": found.partitions if found else None,
                "replication_factor": found.replication_factor if found else None,
                "configs": dict(found.configs) if found else {},
                "status": _status(found is not None, name in wanted, name in differing),
            }
        )
    return rows


def _status(exists: bool, wanted: bool, differs: bool) -> str:
    if not exists:
        return "missing"
    if not wanted:
        return "not in catalog"
    return "differs" if differs else "ok"


@app.command()
def acls(  # keyword-only: typer passes options by name
    *,
    catalog: Path | None = CatalogOption,
    schemas: Path | None = SchemasOption,
    agency_principal: str = typer.Option(
        _DEFAULT_PRINCIPALS.agency, help="Principal of each agency; {agency} is its code."
    ),
    worker_principal: str = typer.Option(
        _DEFAULT_PRINCIPALS.worker, help="The stream workers' principal."
    ),
    operator_principal: str = typer.Option(
        _DEFAULT_PRINCIPALS.operator,
        help="The principal that runs `exchange topics` and `exchange dlq`.",
    ),
    evaluation_principal: str = typer.Option(
        _DEFAULT_PRINCIPALS.evaluation, help="The evaluation processor's principal."
    ),
    show_plan: bool = typer.Option(
        False, "--plan", help="Compare with the cluster's ACLs; change nothing."
    ),
    apply_acls: bool = typer.Option(
        False, "--apply", help="Create the ACLs the cluster lacks; print each one."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Print the Kafka ACLs the catalog implies (kafka-acls.sh commands or JSON), or
    compare them with the cluster's (--plan), or create the missing ones (--apply)."""
    settings = load_settings()
    loaded = load_or_exit(
        catalog or settings.catalog_path, schemas or settings.schemas_path, as_json=as_json
    )
    principals = Principals(
        agency_principal, worker_principal, operator_principal, evaluation_principal
    )
    bindings = catalog_acls(loaded, Topics.for_settings(settings), principals)
    if show_plan and apply_acls:
        typer.echo("--plan and --apply exclude each other", err=True)
        raise typer.Exit(2)
    if show_plan or apply_acls:
        _acls_on_cluster(settings, bindings, apply=apply_acls, as_json=as_json)
        return
    if as_json:
        _echo_json(to_json(bindings))
        return
    typer.echo("# BOOTSTRAP: the cluster; ADMIN_CONFIG: a client config of a principal that may")
    typer.echo("# alter ACLs. Each line grants one principal its operations on one resource.")
    for line in render_commands(bindings):
        typer.echo(line)


def _acls_on_cluster(
    settings: ExchangeSettings, bindings: list[AclBinding], *, apply: bool, as_json: bool
) -> None:
    from exchange._acls_admin import AclAdmin, apply_acls, read_acl_plan

    async def run() -> AclPlan:
        async with AclAdmin.for_settings(settings) as admin:
            if apply:
                return await apply_acls(admin, bindings, settings.topic_prefix)
            return await read_acl_plan(admin, bindings, settings.topic_prefix)

    found = asyncio.run(run())  # a BrokerError becomes one line and exit 1 (cli/_app.main)
    if as_json:
        _echo_json({"applied" if apply else "plan": found.to_json()})
        return
    for line in found.lines(done=apply):
        typer.echo(line)
