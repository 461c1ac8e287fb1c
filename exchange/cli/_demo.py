"""``exchange demo``: the whole bus at work in one command (see ``docs/demo.md``).

Starts what is missing (local broker, topics, stream worker, six simulated provider agencies),
sends a mixed workload through the SDK clients of several requester agencies with a live
progress bar, and prints the summary: outcomes by kind and by service, throughput, latency
percentiles, lost and duplicate outcomes, dead letters, and whether the audit trail agrees.
Exit code 1 when an inquiry was lost, an outcome delivered twice or the audit trail disagrees.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.console import Console

from exchange.cli._common import load_settings


def demo(  # a command with many options: the CLI is where they belong
    *,
    inquiries: int = typer.Option(10_000, "--inquiries", "-n", min=1, help="How many to send."),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=1.0,
        help="Send at this many per second (default: as fast as the "
        "bus takes them, --in-flight at most waiting).",
    ),
    in_flight: int = typer.Option(
        500, "--in-flight", min=1, help="Without --rate: inquiries waiting at most at once."
    ),
    deadline: float = typer.Option(
        3.0, "--deadline", min=0.5, help="Each inquiry's deadline on the bus, seconds."
    ),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave the bus up to explore; Ctrl-C stops everything."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    seed: int = typer.Option(0, "--seed", help="Seed of the workload's draw."),
) -> None:
    """Run the bus with simulated agencies and a mixed workload; print the summary."""
    from exchange.demo import DemoOptions, run_demo
    from exchange.demo._console import ConsoleUI
    from exchange.demo._run import run_until_stopped
    from exchange.demo._summary import healthy

    settings = load_settings()  # warnings only: the progress and the summary are the output
    options = DemoOptions(
        inquiries=inquiries,
        rate=rate,
        in_flight=in_flight,
        deadline=deadline,
        keep_running=keep_running,
        seed=seed,
    )
    ui = ConsoleUI(Console(stderr=True), settings, as_json=as_json)
    result: dict[str, Any] = {}

    async def main(stop: asyncio.Event) -> None:
        result.update(await run_demo(settings, options, ui, stop=stop))

    try:
        asyncio.run(run_until_stopped(main))
    except asyncio.CancelledError:
        ui.note("interrupted; everything the demo started is stopped")
        raise typer.Exit(130) from None
    if not healthy(result):
        ui.note("[red]a guarantee did not hold: see lost, duplicates and audit above[/]")
        raise typer.Exit(1)
