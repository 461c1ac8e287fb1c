"""``exchange report compliance``: per provider agency and service, how inquiries were served.

Figures come from the evaluation processor's ``<prefix>.compliance`` topic, topped up from
``<prefix>.audit`` for what the processor does not hold (see ``docs/compliance.md``), so the
report equals a direct count over the audit trail for the range.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Literal

import typer
from rich.console import Console
from rich.table import Table

from exchange._errors import ConfigError
from exchange.cli._common import load_settings

if TYPE_CHECKING:
    from exchange._compliance_report import ReportRow

app = typer.Typer(
    name="report", help="Reports for operators and the council.", no_args_is_help=True
)


def _fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}"


@app.command()
def compliance(  # a command with many options: the CLI is where they belong
    *,
    since: str = typer.Option("7d", help="Start: ISO date/time (UTC), or a span like 7d, 36h."),
    until: str = typer.Option("now", help="End (exclusive): ISO date/time, or 'now'."),
    agency: str | None = typer.Option(None, help="Only this agency."),
    requesters: bool = typer.Option(
        False, "--requesters", help="Rows per requester agency instead of provider and service."
    ),
    by: str = typer.Option("total", help="Rows per 'total' range, 'day' or 'hour'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Inquiries received, answered within deadline, timed out, failed, automatic share, p95."""
    from exchange._codec import Codec, SchemaStore
    from exchange._compliance_report import (
        parse_when,
        report_rows,
        rows_to_csv,
        rows_to_json,
    )
    from exchange._compliance_source import read_figures

    if by not in ("total", "day", "hour"):
        raise ConfigError(f"--by must be total, day or hour, not {by!r}")
    breakdown: Literal["total", "day", "hour"] = by  # type: ignore[assignment]  # checked above
    settings = load_settings()
    now_ms = round(time.time() * 1000)
    try:
        since_ms, until_ms = parse_when(since, now_ms=now_ms), parse_when(until, now_ms=now_ms)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if until_ms <= since_ms:
        raise ConfigError("--until must be after --since")
    codec = Codec(SchemaStore.from_directory(settings.schemas_path / "envelope"))
    reading = asyncio.run(
        read_figures(settings, codec, since_ms, until_ms, by_hour=breakdown == "hour")
    )
    rows = report_rows(
        reading.figures,
        by=breakdown,
        kind="requester" if requesters else "provider",
        agency=agency,
    )
    if as_json:
        document = rows_to_json(rows, since_ms=since_ms, until_ms=until_ms, by=breakdown)
        document["audit_records_read"] = reading.audit_records_read
        document["undecodable_audit_records"] = reading.undecodable
        typer.echo(json.dumps(document, indent=2))
    elif as_csv:
        typer.echo(rows_to_csv(rows), nl=False)
    else:
        _print_table(rows, reading.audit_records_read, reading.undecodable)


def _print_table(rows: list[ReportRow], audit_read: int, undecodable: int) -> None:
    console = Console()
    table = Table(show_lines=False)
    for column in ("agency", "service", "start", "received", "in time", "timed out", "failed",
                   "rejected", "automatic", "p95"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("agency", "service", "start") else "right"
        )
    for row in rows:
        s = row.summary()
        table.add_row(
            s["agency"], s["service"], s["start"] or "", str(s["received"]),
            _fmt(s["answered_in_time_pct"], " %"), str(s["timed_out"]), str(s["failed"]),
            str(s["rejected"]), _fmt(s["automatic_pct"], " %"),
            _fmt(s["p95_answer_seconds"], " s"),
        )  # fmt: skip
    console.print(table)
    note = f"{audit_read} audit records read directly"
    if undecodable:
        note += f", {undecodable} undecodable skipped"
    console.print(note, style="dim")
