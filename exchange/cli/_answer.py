"""``exchange desk``: the inquiries a provider deferred to a person, and answering them.

``list`` shows what waits on ``<prefix>.desk.<AGENCY>`` (oldest deadline first, with the
request so the person can answer it); ``answer`` publishes a manual response
(``answered_by=MANUAL``) and takes the inquiry off the desk. The response payload is JSON read
against the service's newest response schema, as ``exchange inquire`` reads requests.

Each command is a short process that looks at the desk once (``answer`` with a payload: once
to find the service, once while answering), so each look reads with a consumer of its own; a
kept reader (an open :class:`~exchange._desk.Desk`) pays off only in a process that looks often.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from exchange._answer import Inquiry
from exchange._catalog import load_catalog
from exchange._catalog_model import Catalog
from exchange._codec import Codec, SchemaStore
from exchange._desk import answer_manually, list_deferred
from exchange._envelopes import ServiceCache
from exchange._settings import ExchangeSettings
from exchange.cli._common import load_settings
from exchange.cli._payload import from_json, read_json_argument, to_json

app = typer.Typer(
    name="desk",
    help="List and answer the inquiries a provider deferred to a person (manual answers).",
    no_args_is_help=True,
)

AgencyOption = typer.Option(..., "--agency", help="The provider agency whose desk it is.")


@app.command(name="list")
def list_desk(
    agency: str = AgencyOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Inquiries waiting for a person, oldest deadline first."""
    settings = load_settings()
    waiting = asyncio.run(list_deferred(settings, agency))
    if as_json:
        typer.echo(json.dumps([inquiry_json(i) for i in waiting], indent=2, ensure_ascii=False))
        return
    if not waiting:
        typer.echo(f"nothing waits on the {agency} desk")
        return
    console = Console(highlight=False, soft_wrap=True)
    now = dt.datetime.now(dt.UTC)
    for inquiry in waiting:
        due = (inquiry.deadline - now).total_seconds()
        console.print(
            f"[bold]{inquiry.id}[/]  {inquiry.service}  "
            + (f"due in {due:.0f} s" if due > 0 else "[red]overdue[/]")
        )
        case = f", case {inquiry.case_reference}" if inquiry.case_reference else ""
        console.print(f"  asked by {_who(inquiry)} for {inquiry.purpose}{case}")
        request = json.dumps(to_json(inquiry.payload), ensure_ascii=False)
        console.print(f"  request: {escape(request)}")


@app.command()
def answer(  # a command with many options: the CLI is where they belong
    *,
    inquiry_id: str = typer.Argument(..., help="The inquiry id `desk list` shows."),
    agency: str = AgencyOption,
    status: str = typer.Option(..., help="FOUND, NOT_FOUND or ERROR."),
    payload: str | None = typer.Option(
        None, help="The response payload (JSON, or @file.json); required for FOUND."
    ),
    error_code: str | None = typer.Option(None, help="With ERROR: a machine-readable code."),
    error_message: str | None = typer.Option(None, help="With ERROR: a sentence for people."),
) -> None:
    """Answer one deferred inquiry by hand; the requester gets it as a MANUAL answer."""
    settings = load_settings()
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    converted: dict[str, Any] | None = None
    if payload is not None:
        waiting = {str(i.id): i for i in asyncio.run(list_deferred(settings, agency))}
        service = waiting[inquiry_id].service if inquiry_id in waiting else None
        raw = read_json_argument(payload)
        converted = raw if service is None else _response(settings, catalog, service, raw)
    answered = asyncio.run(
        answer_manually(
            settings,
            agency,
            inquiry_id,
            status.upper(),
            converted,
            error_code=error_code,
            error_message=error_message,
            catalog=catalog,
        )
    )
    typer.echo(f"answered {answered.id} ({answered.service}, asked by {_who(answered)})")


def _response(
    settings: ExchangeSettings, catalog: Catalog, service: str, raw: dict[str, Any]
) -> dict[str, Any]:
    codec = Codec(SchemaStore.from_directory(settings.schemas_path))
    return from_json(ServiceCache(catalog, codec).get(service).response.definition, raw)


def _who(inquiry: Inquiry) -> str:
    sub = inquiry.requester_subsystem
    return inquiry.requester + (f"/{sub}" if sub else "")


def inquiry_json(inquiry: Inquiry) -> dict[str, Any]:
    """A deferred inquiry as plain JSON data."""
    return {
        "inquiry_id": str(inquiry.id),
        "service": inquiry.service,
        "requester": _who(inquiry),
        "purpose": inquiry.purpose,
        "case_reference": inquiry.case_reference,
        "end_user_id": inquiry.end_user_id,
        "subject": None if inquiry.subject is None else list(inquiry.subject),
        "created_at": inquiry.created_at.isoformat(),
        "deadline": inquiry.deadline.isoformat(),
        "payload": to_json(inquiry.payload),
    }
