"""``exchange inquire``: send one inquiry as an agency and print its outcome.

The payload is JSON (``--payload '{...}'`` or ``--payload @file.json``), read against the
service's newest request schema (dates as ``"1990-03-21"``, see :mod:`exchange.cli._payload`).
Exit code: 0 when the inquiry was answered (``FOUND`` or ``NOT_FOUND``), 2 for any other
outcome (rejected, failed, timed out), 1 when it could not be sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from exchange._catalog import load_catalog
from exchange._client import ExchangeClient
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache
from exchange._errors import ConfigError
from exchange._outcome import Outcome, OutcomeKind
from exchange._settings import ExchangeSettings
from exchange.cli._common import load_settings, parse_requester
from exchange.cli._payload import from_json, read_json_argument, to_json

#: Exit code of an inquiry that ended without an answer.
EXIT_NOT_ANSWERED = 2


def inquire(  # a command with many options: the CLI is where they belong
    *,
    service: str = typer.Argument(..., help="Versioned service id, e.g. nocr.person.verify.v1."),
    requester: str = typer.Option(..., "--as", help="Ask as AGENCY or AGENCY/subsystem."),
    purpose: str = typer.Option(..., help="The purpose (legal basis) the policy grants."),
    payload: str = typer.Option(..., help="The request payload: JSON, or @file.json."),
    timeout: float = typer.Option(
        30.0, min=0.1, help="Seconds to wait for the outcome (the bus settles it anyway)."
    ),
    deadline: float | None = typer.Option(
        None, min=0.1, help="The deadline on the bus, seconds from now (default: the service's)."
    ),
    case_reference: str | None = typer.Option(None, help="Your case or file number."),
    end_user: str | None = typer.Option(None, help="Who at your agency asks."),
    subject: str | None = typer.Option(
        None, help="Who or what it is about, KIND:ID (PERSON:0499370899); kept in the audit."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Send one inquiry and print its outcome (exit 0 answered, 2 otherwise)."""
    settings = load_settings()
    agency, subsystem = parse_requester(requester)
    outcome = asyncio.run(
        _ask(
            settings,
            agency,
            subsystem,
            service,
            read_json_argument(payload),
            purpose=purpose,
            timeout=timeout,
            deadline=deadline,
            case_reference=case_reference,
            end_user=end_user,
            subject=_subject(subject),
        )
    )
    if as_json:
        typer.echo(json.dumps(outcome_json(outcome), indent=2))
    else:
        _print(outcome)
    if outcome.kind is not OutcomeKind.ANSWERED:
        raise typer.Exit(EXIT_NOT_ANSWERED)


async def _ask(
    settings: ExchangeSettings,
    agency: str,
    subsystem: str | None,
    service: str,
    raw: dict[str, Any],
    *,
    purpose: str,
    timeout: float,  # noqa: ASYNC109 - passed on to the client
    deadline: float | None,
    case_reference: str | None,
    end_user: str | None,
    subject: tuple[str, str] | None,
) -> Outcome:
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    codec = Codec(SchemaStore.from_directory(settings.schemas_path))
    request = ServiceCache(catalog, codec).get(service).request
    payload = from_json(request.definition, raw)
    due = None if deadline is None else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deadline)
    async with ExchangeClient.connect(
        agency=agency, subsystem=subsystem, settings=settings, catalog=catalog
    ) as client:
        return await client.inquire(
            service,
            payload,
            purpose=purpose,
            timeout=timeout,
            deadline=due,
            case_reference=case_reference,
            end_user_id=end_user,
            subject=subject,
        )


def _subject(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    kind, sep, identifier = text.partition(":")
    if not sep or not kind or not identifier:
        raise ConfigError(f"--subject {text!r}: give KIND:ID, e.g. PERSON:0499370899")
    return kind.upper(), identifier


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The outcome as plain JSON data."""
    return {
        "inquiry_id": str(outcome.inquiry_id),
        "kind": outcome.kind.value,
        "service": outcome.service,
        "provider": outcome.provider,
        "status": outcome.status,
        "reject_reason": outcome.reject_reason,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "answered_by": outcome.answered_by,
        "detail": outcome.detail,
        "settled_at": None if outcome.settled_at is None else outcome.settled_at.isoformat(),
        "local": outcome.local,
        "elapsed_ms": None if outcome.elapsed is None else round(outcome.elapsed * 1000, 1),
        "payload": to_json(outcome.payload),
    }


def _print(outcome: Outcome) -> None:
    console = Console(highlight=False, soft_wrap=True)
    took = "" if outcome.elapsed is None else f" in {outcome.elapsed * 1000:.0f} ms"
    style = "green" if outcome.kind is OutcomeKind.ANSWERED else "red"
    why = outcome.status or outcome.reject_reason or outcome.error_code or ""
    mode = f" ({outcome.answered_by.lower()})" if outcome.answered_by else ""
    console.print(f"[bold {style}]{outcome.kind.value}[/] {why}{mode}{took}")
    console.print(f"inquiry {outcome.inquiry_id} · {outcome.service} at {outcome.provider}")
    for note in (outcome.detail, outcome.error_message):
        if note:
            console.print(escape(note), style="dim")
    if outcome.payload is not None:
        console.print_json(json.dumps(to_json(outcome.payload)))
