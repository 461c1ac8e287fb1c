"""``exchange dlq``: read the dead letters, and replay chosen ones after a fix.

``show`` lists the newest dead letters (``--limit``), optionally of one reason, each with its
id (``<partition>:<offset>`` in the DLQ), when, why, where it came from, its size and key, and a
preview that names the Avro schema and inquiry identity but never prints a payload.
``replay`` writes chosen dead letters (``--offset ID``, repeatable, or every one of
``--reason``) back to their source topics, byte for byte, and says where each went; dead
letters already replayed are skipped unless ``--again``. It asks before writing unless
``--yes``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import typer

from exchange._codec import Codec, SchemaStore
from exchange._dlq import (
    DeadLetterEntry,
    DlqListing,
    choose_for_replay,
    parse_entry_id,
    preview,
)
from exchange._dlq_io import Replayed, read_dlq, replay
from exchange._dlq_sources import unverified
from exchange._errors import ConfigError, SchemaError
from exchange._settings import ExchangeSettings
from exchange._topology import Topics
from exchange.cli._common import load_settings

app = typer.Typer(
    name="dlq",
    help="Show dead letters and replay them to their source topics.",
    no_args_is_help=True,
)

ReasonOption = typer.Option(None, "--reason", help="Only dead letters of this reason code.")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
OffsetOption = typer.Option(
    None, "--offset", help="Dead letter id <partition>:<offset> (as `show` prints); repeat."
)
#: Previews decode records of any size the broker let through.
_PREVIEW_MAX_BYTES = 64 * 1024 * 1024


def _codec(settings: ExchangeSettings) -> Codec | None:
    """The bus's schemas for previews; without them previews fall back to hex."""
    try:
        store = SchemaStore.from_directory(settings.schemas_path)
    except SchemaError:
        return None
    return Codec(store, max_record_bytes=_PREVIEW_MAX_BYTES)


@app.command()
def show(
    limit: int = typer.Option(20, min=1, help="Show the newest N dead letters."),
    reason: str | None = ReasonOption,
    as_json: bool = JsonOption,
) -> None:
    """List dead letters, newest last: id, when, reason, source, size, key, preview."""
    settings = load_settings()
    listing = asyncio.run(read_dlq(settings, DlqListing(reason=reason, limit=limit)))
    entries, codec = listing.entries(), _codec(settings)
    if as_json:
        typer.echo(json.dumps([entry.to_json(codec) for entry in entries], indent=2))
        return
    if not entries:
        typer.echo(f"no dead letters in {Topics.for_settings(settings).dlq}")
        return
    typer.echo(f"{len(entries)} dead letter(s), oldest first (times UTC)")
    for line in _blocks(entries, codec):
        typer.echo(line)


def _blocks(entries: list[DeadLetterEntry], codec: Codec | None) -> list[str]:
    """Each dead letter as a head line, then its preview and message, indented."""
    lines = []
    for e in entries:
        letter = e.letter
        when = (
            letter.dead_lettered_at if letter else datetime.fromtimestamp(e.timestamp / 1000, UTC)
        )
        source = (
            f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
            if letter
            else "source unknown"
        )
        component = (letter.component if letter else None) or "-"
        replayed = "  (replayed)" if e.replayed else ""
        lines.append(
            f"{e.id}  {when:%Y-%m-%d %H:%M:%S}  {e.reason}  {component}  {source}  "
            f"{len(e.value or b'')} B  key={e.to_json()['key']}{replayed}"
        )
        lines.append(f"    preview: {preview(e.value, codec)}")
        if letter:
            lines.append(f"    message: {letter.message}")
    return lines


@app.command(name="replay")
def replay_command(  # keyword-only: typer passes options by name
    *,
    offset: list[str] | None = OffsetOption,
    reason: str | None = ReasonOption,
    again: bool = typer.Option(False, "--again", help="Also replay ones replayed before."),
    unverified: bool = typer.Option(
        False,
        "--unverified",
        help="Also replay ones whose source record has expired (never ones that differ from it).",
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = JsonOption,
) -> None:
    """Write chosen dead letters back to their source topics, byte for byte."""
    if not offset and reason is None:
        raise ConfigError("choose dead letters with --offset ID (repeatable) or --reason R")
    try:
        ids = [parse_entry_id(text) for text in offset or ()]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    settings = load_settings()
    chosen = _verified(settings, _chosen(settings, ids, reason, again=again), unverified)
    if not chosen:
        typer.echo('{"replayed": []}' if as_json else "nothing to replay")
        return
    if not yes:
        for entry in chosen:
            source = entry.letter.source_topic if entry.letter else "?"
            typer.echo(f"{entry.id} {entry.reason} -> {source}")
        typer.confirm(f"replay {len(chosen)} dead letter(s)?", abort=True)
    _report(asyncio.run(replay(settings, chosen)), as_json=as_json)


def _chosen(
    settings: ExchangeSettings,
    ids: list[tuple[int | None, int]],
    reason: str | None,
    *,
    again: bool,
) -> list[DeadLetterEntry]:
    listing = DlqListing(reason=reason, ids=ids or None)
    entries = asyncio.run(read_dlq(settings, listing)).entries()
    topics = Topics.for_settings(settings)
    try:
        chosen, skipped = choose_for_replay(entries, ids, topics, again=again)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    for entry_id, why in skipped:
        typer.echo(f"skipped {entry_id}: {why}", err=True)
    return chosen


def _verified(
    settings: ExchangeSettings, chosen: list[DeadLetterEntry], allow_gone: bool
) -> list[DeadLetterEntry]:
    """The chosen entries their source records vouch for (or, if allowed, cannot any more)."""
    if not chosen:
        return chosen
    refused = set()
    for problem in asyncio.run(unverified(settings, chosen)):
        if problem.gone and allow_gone:
            continue
        hint = " (--unverified to replay it anyway)" if problem.gone else ""
        typer.echo(f"skipped {problem.id}: {problem.why}{hint}", err=True)
        refused.add(problem.id)
    return [entry for entry in chosen if entry.id not in refused]


def _report(done: list[Replayed], *, as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "id": r.id,
                "reason": r.reason,
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
            }
            for r in done
        ]
        typer.echo(json.dumps({"replayed": rows}, indent=2))
        return
    for r in done:
        typer.echo(f"replayed {r.id} ({r.reason}) -> {r.topic}[{r.partition}]@{r.offset}")
    typer.echo(f"{len(done)} dead letter(s) replayed")
