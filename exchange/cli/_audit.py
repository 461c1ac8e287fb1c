"""``exchange audit``: verify the audit trail's hash chains, and answer a subject's question.

``verify`` reads the whole audit topic (committed records only) and checks every chain (one per
input partition, see docs/wire-format.md); it prints each chain's record count and head hash,
and every break with its partition and offset, and exits 1 if any chain is broken.
``subject KIND ID`` lists the inquiries about one subject (a person, company, vehicle …): when,
which agency asked which, for which service and purpose, the case reference and the outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import typer

from exchange._audit_chain import ChainReport, verify_trail
from exchange._audit_io import AuditTrail, about_subject, read_audit_trail
from exchange._compliance_report import parse_when
from exchange._errors import ConfigError
from exchange._schema_store import SchemaStore
from exchange.cli._common import load_settings

app = typer.Typer(
    name="audit",
    help="Verify the audit trail's hash chains; list the inquiries about one subject.",
    no_args_is_help=True,
)

JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
_SUBJECT_KINDS = ("PERSON", "COMPANY", "VEHICLE", "ACCOUNT", "ADDRESS", "OTHER")


def _read() -> AuditTrail:
    settings = load_settings()
    store = SchemaStore.from_directory(settings.schemas_path)
    return asyncio.run(read_audit_trail(settings, store))


@app.command()
def verify(as_json: bool = JsonOption) -> None:
    """Check every chain of the audit trail; exit 1 on a changed, removed or inserted record."""
    trail = _read()
    reports = verify_trail((e.trail_record() for e in trail.entries), truncated=trail.truncated)
    broken = [report for report in reports if report.problems]
    if as_json:
        document = {
            "topic": trail.topic,
            "ok": not broken,
            "chains": [r.to_json() for r in reports],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        for line in _verify_lines(trail.topic, reports, broken):
            typer.echo(line)
    if broken:
        raise typer.Exit(1)


def _verify_lines(topic: str, reports: list[ChainReport], broken: list[ChainReport]) -> list[str]:
    records = sum(report.records for report in reports)
    lines = [f"{topic}: {records} record(s) in {len(reports)} chain(s)"]
    for report in reports:
        head = "-" if report.head is None else report.head.hex()
        chain = "no chain" if report.chain is None else f"chain {report.chain}"
        lines.append(
            f"  partition {report.partition} {chain}: {report.records} record(s), head {head}"
        )
        lines += [f"    BROKEN at offset {p.offset}: {p.kind}: {p.detail}" for p in report.problems]
    lines.append("BROKEN" if broken else "OK: every chain is intact")
    return lines


@app.command()
def subject(
    kind: str = typer.Argument(..., help=f"The subject's kind: {', '.join(_SUBJECT_KINDS)}."),
    subject_id: str = typer.Argument(..., metavar="ID", help="The subject's identifier."),
    since: str | None = typer.Option(
        None, "--since", help="Only from: ISO date/time (UTC), or a span like 30d, 36h."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Which agency asked about this subject, when and why (oldest first)."""
    kind = kind.upper()
    if kind not in _SUBJECT_KINDS:
        raise ConfigError(f"KIND must be one of {', '.join(_SUBJECT_KINDS)}, not {kind!r}")
    since_ms = None
    if since is not None:
        try:
            since_ms = parse_when(since, now_ms=int(time.time() * 1000))
        except ValueError as exc:
            raise ConfigError(f"--since: {exc}") from exc
    rows = about_subject(_read().entries, kind, subject_id, since_ms=since_ms)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no inquiries about {kind} {subject_id} in the audit trail")
        return
    typer.echo(f"{len(rows)} record(s) about {kind} {subject_id}, oldest first (times UTC)")
    for row in rows:
        typer.echo(_subject_line(row))


def _subject_line(row: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(row["recorded_at"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    outcome = row["outcome"] or row["event"]
    if row["reject_reason"]:
        outcome += f" ({row['reject_reason']})"
    case = row["case_reference"] or "-"
    signed = f"  signed with key {row['request_signed_with']}" if row["request_signed_with"] else ""
    return (
        f"{when}  {row['requester']} asked {row['provider']}  {row['service']}  "
        f"purpose {row['purpose']}  case {case}  {outcome}  inquiry {row['inquiry_id']}{signed}"
    )
