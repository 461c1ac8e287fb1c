"""``exchange tail``: follow one agency's outcomes, or the audit trail, live and decoded.

Reads every partition (no consumer group, ``read_committed``: what the workers committed),
from the end unless ``--from-beginning``, and prints one line per record, or one JSON object
per line with ``--json``. Personal data stays hidden unless asked for: outcome payloads show
their field names only (``--show-payload`` prints the values), audit subjects are masked
(``--show-subject``). ``--limit N`` stops after N records; Ctrl-C stops at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache
from exchange._errors import BrokerError
from exchange._settings import ExchangeSettings
from exchange._topic_reader import assign_all, group_free_consumer
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD, INQUIRY_OUTCOME
from exchange.cli._common import load_settings
from exchange.cli._payload import to_json

app = typer.Typer(
    name="tail",
    help="Follow outcomes or audit records live, decoded (no personal data unless asked).",
    no_args_is_help=True,
)

FromBeginningOption = typer.Option(
    False, "--from-beginning", help="Start at the oldest record kept, not at the end."
)
LimitOption = typer.Option(None, "--limit", min=1, help="Stop after this many records.")
InquiryOption = typer.Option(None, "--inquiry", help="Only the records of this inquiry id.")
JsonOption = typer.Option(False, "--json", help="One JSON object per line.")

Printer = Callable[[dict[str, Any]], None]


@app.command()
def outcomes(  # a command with many options: the CLI is where they belong
    *,
    agency: str = typer.Option(..., "--agency", help="Whose outcomes (its replies topic)."),
    from_beginning: bool = FromBeginningOption,
    limit: int | None = LimitOption,
    inquiry: str | None = InquiryOption,
    show_payload: bool = typer.Option(
        False, "--show-payload", help="Print payload values, not only field names."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Follow the outcomes delivered to AGENCY (every instance of its clients)."""
    settings = load_settings()
    codec = Codec(SchemaStore.from_directory(settings.schemas_path))
    services = ServiceCache(load_catalog(settings.catalog_path, settings.schemas_path), codec)
    reader = codec.store.get(INQUIRY_OUTCOME)

    def decode(value: bytes) -> dict[str, Any]:
        record = codec.decode(value, reader=reader)
        raw = record.pop("payload")
        if raw is not None:
            schemas = services.find(f"{record['service_code']}.v{record['service_version']}")
            payload = codec.decode(raw, reader=schemas.response if schemas else None)
            record["payload"] = to_json(payload) if show_payload else sorted(payload)
        else:
            record["payload"] = None
        return to_json(record)  # type: ignore[no-any-return]  # a dict in, a dict out

    show = _json_line if as_json else _outcome_line
    topic = Topics.for_settings(settings).replies(agency)
    reading = Reading(topic, decode, show, from_beginning, limit, _key(inquiry))
    _follow(settings, reading)


@app.command()
def audit(  # a command with many options: the CLI is where they belong
    *,
    from_beginning: bool = FromBeginningOption,
    limit: int | None = LimitOption,
    inquiry: str | None = InquiryOption,
    show_subject: bool = typer.Option(
        False, "--show-subject", help="Print subjects' ids unmasked."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Follow the audit trail: every settled inquiry and every anomaly the bus noticed."""
    settings = load_settings()
    codec = Codec(SchemaStore.from_directory(settings.schemas_path / "envelope"))
    reader = codec.store.get(AUDIT_RECORD)

    def decode(value: bytes) -> dict[str, Any]:
        record = codec.decode(value, reader=reader)
        for name in ("prev_hash", "hash"):
            record[name] = None if record[name] is None else record[name].hex()
        subject = record["subject"]
        if subject is not None and not show_subject:
            subject["id"] = mask(subject["id"])
        return to_json(record)  # type: ignore[no-any-return]  # a dict in, a dict out

    show = _json_line if as_json else _audit_line
    topic = Topics.for_settings(settings).audit
    reading = Reading(topic, decode, show, from_beginning, limit, _key(inquiry))
    _follow(settings, reading)


def mask(identifier: str) -> str:
    """Keep the first two and last two characters: enough to tell records apart."""
    if len(identifier) <= 4:
        return "*" * len(identifier)
    return identifier[:2] + "*" * (len(identifier) - 4) + identifier[-2:]


@dataclass(frozen=True, slots=True)
class Reading:
    """What to follow and how to show it."""

    topic: str
    decode: Callable[[bytes], dict[str, Any]]
    show: Printer
    from_beginning: bool
    limit: int | None
    #: Only records with this key (an inquiry id), if set.
    key: bytes | None


def _key(inquiry: str | None) -> bytes | None:
    return None if inquiry is None else inquiry.strip().lower().encode("ascii")


def _follow(settings: ExchangeSettings, reading: Reading) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_read(settings, reading))


async def _read(settings: ExchangeSettings, reading: Reading) -> None:
    from aiokafka.errors import KafkaError

    consumer = group_free_consumer(settings)
    shown, limit = 0, reading.limit
    try:
        await consumer.start()
        await assign_all(settings, consumer, [reading.topic], from_beginning=reading.from_beginning)
        while limit is None or shown < limit:
            batches = await consumer.getmany(timeout_ms=1000)
            records = sorted(
                (r for batch in batches.values() for r in batch), key=lambda r: r.timestamp
            )
            for record in records:
                if reading.key is not None and record.key != reading.key:
                    continue
                reading.show(_decoded(reading.decode, record.value))
                shown += 1
                if limit is not None and shown >= limit:
                    break
    except KafkaError as exc:
        raise BrokerError(f"cannot read {reading.topic}: {exc}") from exc
    finally:
        await consumer.stop()


def _decoded(decode: Callable[[bytes], dict[str, Any]], value: bytes) -> dict[str, Any]:
    try:
        return decode(value)
    except Exception as exc:  # a record of another schema: say so, keep following
        return {"undecodable": f"{type(exc).__name__}: {exc}", "bytes": len(value)}


def _json_line(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, ensure_ascii=False))


_console = Console(highlight=False, soft_wrap=True)


def _when(text: str | None) -> str:
    if not text:
        return "--:--:--"
    return datetime.fromisoformat(text).strftime("%H:%M:%S.%f")[:-3]


def _ref(ref: dict[str, Any] | None) -> str:
    if ref is None:
        return "?"
    subsystem = ref.get("subsystem")
    return str(ref["agency"]) + (f"/{subsystem}" if subsystem else "")


def _outcome_line(record: dict[str, Any]) -> None:
    if "undecodable" in record:
        _console.print(f"[red]undecodable[/] {escape(record['undecodable'])}")
        return
    kind = record["kind"]
    style = "green" if kind == "ANSWERED" else "red"
    error = (record["error"] or {}).get("code")
    why = record["reject_reason"] or error or record["status"] or ""
    mode = f" {record['answered_by'].lower()}" if record["answered_by"] else ""
    payload = record["payload"]
    if payload is None:
        shown = ""
    elif isinstance(payload, dict):
        shown = " payload=" + json.dumps(payload, ensure_ascii=False)
    else:  # field names only
        shown = " payload={" + ", ".join(payload) + "}"
    _console.print(
        f"{_when(record['settled_at'])} [bold {style}]{kind}[/] {why}{mode} "
        f"{record['service_code']}.v{record['service_version']} "
        f"{_ref(record['requester'])} → {_ref(record['provider'])} "
        f"purpose={record['purpose']} id={record['inquiry_id']}{escape(shown)}"
    )


def _audit_line(record: dict[str, Any]) -> None:
    if "undecodable" in record:
        _console.print(f"[red]undecodable[/] {escape(record['undecodable'])}")
        return
    subject = record["subject"]
    about = "" if subject is None else f" subject={subject['kind']}:{subject['id']}"
    why = record["reject_reason"] or record["error_code"] or record["status"] or ""
    took = "" if record["latency_ms"] is None else f" {record['latency_ms']} ms"
    late = " LATE" if record["within_deadline"] is False else ""
    what = f"{record['event']} {record['kind'] or ''} {why}{took}{late}"
    _console.print(
        f"{_when(record['recorded_at'])} {what} "
        f"{record['service_code']}.v{record['service_version']} "
        f"{_ref(record['requester'])} → {_ref(record['provider'])} "
        f"purpose={record['purpose']}{about} id={record['inquiry_id']}"
    )
