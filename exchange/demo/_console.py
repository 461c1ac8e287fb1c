"""How ``exchange demo`` talks to a person: notes, a live progress bar, the summary tables,
and the hints of ``--keep-running`` (rich, on stderr; stdout is left to ``--json``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from exchange._settings import ExchangeSettings
from exchange.cli._payload import to_json
from exchange.demo._data import build_registers
from exchange.demo._stack import Stack
from exchange.demo._summary import KINDS
from exchange.demo._tally import Tally

__all__ = ["ConsoleUI", "render_summary"]

_KIND_STYLE = {"ANSWERED": "green", "REJECTED": "yellow", "FAILED": "red", "TIMED_OUT": "magenta"}


class ConsoleUI:
    """The demo's :class:`~exchange.demo._run.DemoUI` on a rich console."""

    def __init__(self, console: Console, settings: ExchangeSettings, *, as_json: bool) -> None:
        self.console = console
        self.settings = settings
        self.as_json = as_json

    def note(self, message: str) -> None:
        """A dim line on stderr."""
        self.console.print(f"[dim]•[/] {message}", highlight=False)

    @contextlib.asynccontextmanager
    async def progress(self, tally: Tally, total: int) -> AsyncIterator[None]:
        """Two live bars while the block runs: sent, and settled with counts by kind."""
        columns = (
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[kinds]}"),
        )
        with Progress(*columns, console=self.console, disable=not self.console.is_terminal) as bars:
            sent = bars.add_task("sent", total=total, kinds="")
            settled = bars.add_task("settled", total=total, kinds="")

            def refresh() -> None:
                bars.update(sent, completed=len(tally.sent))
                bars.update(settled, completed=tally.settled, kinds=_kinds_text(tally))

            async def keep_refreshing() -> None:
                while True:
                    refresh()
                    await asyncio.sleep(0.1)

            refresher = asyncio.create_task(keep_refreshing())
            try:
                yield
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                refresh()

    def summary(self, summary: dict[str, Any]) -> None:
        """Print the summary: JSON on stdout with ``--json``, tables otherwise."""
        if self.as_json:
            print(json.dumps(summary, indent=2), flush=True)
        else:
            out = Console(highlight=False)
            if not out.is_terminal:  # a file or a pipe: wide enough for the service names
                out = Console(highlight=False, width=120)
            render_summary(out, summary)

    async def explore(self, summary: dict[str, Any], stack: Stack) -> None:
        """Say how to explore the running bus; return on Ctrl-C (or SIGTERM)."""
        self.console.print(_hints(self.settings, summary, stack), highlight=False)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the stop was asked for: carry on to the clean-up


def _kinds_text(tally: Tally) -> str:
    parts = [
        f"[{_KIND_STYLE[kind]}]{kind.lower().replace('_', ' ')} {tally.kinds[kind]}[/]"
        for kind in KINDS
        if tally.kinds[kind]
    ]
    return " · ".join(parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_summary(console: Console, summary: dict[str, Any]) -> None:
    """The summary as tables: outcomes by kind, by service, then the run's figures."""
    sent = summary["sent"] or 1
    kinds = Table(title="Outcomes", title_justify="left")
    for column in ("outcome", "inquiries", "share", "detail"):
        kinds.add_column(column, justify="right" if column in ("inquiries", "share") else "left")
    details = {
        "ANSWERED": {**summary["answered_status"], **summary["answered_by"]},
        "REJECTED": summary["rejected_reasons"],
        "FAILED": summary["failed_codes"],
        "TIMED_OUT": {},
    }
    for kind in KINDS:
        count = summary["outcomes"][kind]
        detail = ", ".join(f"{k} {v}" for k, v in sorted(details[kind].items()))
        kinds.add_row(
            f"[{_KIND_STYLE[kind]}]{kind}[/]", f"{count:,}", f"{100 * count / sent:.1f} %", detail
        )
    console.print(kinds)
    services = Table(title="By service", title_justify="left")
    for column in ("service", "provider", "sent", *KINDS, "p50 ms", "p95 ms"):
        services.add_column(
            column, justify="left" if column in ("service", "provider") else "right"
        )
    for name, row in summary["by_service"].items():
        services.add_row(
            name,
            row["provider"] or "",
            f"{row['sent']:,}",
            *(f"{row[kind]:,}" for kind in KINDS),
            _ms(row["latency_ms"]["p50"]),
            _ms(row["latency_ms"]["p95"]),
        )
    console.print(services)
    console.print(_figures(summary), highlight=False)


def _figures(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    audit = summary["audit"]
    ok = "[green]yes[/]" if audit["agrees"] else "[red]NO[/]"
    lines = [
        f"sent [bold]{summary['sent']:,}[/] inquiries (+{summary['garbage_records']} garbage "
        f"records) in {summary['send_s']} s; all settled after {summary['wall_s']} s: "
        f"[bold]{summary['throughput_per_s']}[/] inquiries/s",
        f"latency of answers at the requester: p50 {_ms(latency['p50'])} ms · "
        f"p95 {_ms(latency['p95'])} ms · p99 {_ms(latency['p99'])} ms",
        f"lost [bold]{summary['lost']}[/] · delivered twice [bold]{summary['duplicates']}[/] · "
        f"dead-lettered {summary['dlq']} · audit trail agrees: {ok} "
        f"({sum(audit['settled'].values()):,} settled records)",
    ]
    for name, url in summary.get("metrics", {}).items():
        lines.append(f"{name}: {url}")
    lines.append(f"logs: {summary['logs']}")
    return "\n".join(lines)


def _hints(settings: ExchangeSettings, summary: dict[str, Any], stack: Stack) -> str:
    registers = build_registers()
    person = next(p for p in registers.people.values() if p.quirk is None and not p.death_date)
    payload = {
        "national_id": person.national_id,
        "birth_date": person.birth_date,
        "first_name": person.first_name,
        "last_name": person.last_name,
    }
    review = next(t for t in registers.taxpayers.values() if t.under_review and t.quirk is None)
    tax = {"taxpayer_kind": review.kind, "taxpayer_id": review.taxpayer_id}
    env = [f"export EXCHANGE_KAFKA_BOOTSTRAP={summary['bootstrap']}"]
    if settings.topic_prefix != "exchange":
        env.append(f"export EXCHANGE_TOPIC_PREFIX={settings.topic_prefix}")
    commands = [
        *env,
        "exchange tail outcomes --agency TAX          # outcomes as they arrive",
        "exchange tail audit                          # the audit trail",
        "exchange inquire nocr.person.verify.v1 --as TAX/registration "
        f"--purpose tax-registration --payload {shlex.quote(json.dumps(to_json(payload)))}",
        "exchange inquire tax.clearance.status.v1 --as COMPANIES/registration "
        f"--purpose company-dissolution --deadline 600 --timeout 1 "
        f"--payload {shlex.quote(json.dumps(tax))}   # under review: waits on the desk",
        "exchange desk list --agency TAX",
        "exchange report compliance",
        *(f"curl -s {url}" for name, url in stack.metrics.items() if name != "compliance"),
    ]
    if "compliance" in stack.metrics:
        commands.append(f"open {stack.metrics['compliance']}   # the evaluation processor")
    body = "\n".join(f"  {line}" for line in commands)
    return (
        "\n[bold]The bus keeps running.[/] In another terminal, try:\n"
        f"{body}\n[bold]Ctrl-C[/] stops everything the demo started."
    )
