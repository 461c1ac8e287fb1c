"""``exchange bench``: throughput, latency and memory of each scenario, side by side.

A single command (mounted with ``app.command``), not a group.

Runs against the running local broker (or ``EXCHANGE_KAFKA_BOOTSTRAP``); when there is none,
or with ``--own-broker``, it starts a throwaway local broker for the run and stops it after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exchange._errors import BenchmarkError, BrokerError


@dataclasses.dataclass(frozen=True)
class _Broker:
    bootstrap: str
    kafka_version: str | None
    pid: int | None = None


def _existing_broker() -> _Broker | None:
    """``EXCHANGE_KAFKA_BOOTSTRAP``, or the local broker that ``exchange broker start`` runs."""
    from exchange._kafka import resolve_bootstrap
    from exchange._local_broker import LocalBroker, local_broker_home
    from exchange._settings import ExchangeSettings

    settings = ExchangeSettings()
    try:
        address = resolve_bootstrap(settings)
    except BrokerError:
        return None
    running = LocalBroker(local_broker_home(settings)).running()
    if running is not None and running.bootstrap == address:
        return _Broker(address, running.kafka_version, running.pid)
    return _Broker(address, None)


@contextmanager
def _broker(bootstrap: str | None, *, own: bool, console: Console) -> Iterator[_Broker]:
    """The cluster to measure against: given, configured, running locally, or started now."""
    from exchange._local_broker import LocalBroker

    found = _Broker(bootstrap, None) if bootstrap else None if own else _existing_broker()
    if found is not None:
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="exchange-bench-broker-") as home:
        console.print("starting a throwaway local broker for this run …")
        broker = LocalBroker(Path(home))
        started = broker.start(fresh=True)
        try:
            yield _Broker(started.bootstrap, started.kafka_version, started.pid)
        finally:
            broker.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C, so scenario processes and the broker get stopped."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _scenario_names(requested: list[str] | None) -> tuple[str, ...]:
    from exchange.bench._scenario import SCENARIOS, is_available

    if requested:
        return tuple(requested)
    return tuple(name for name in SCENARIOS if is_available(name))


def bench(  # a command with many options: the CLI is where they belong
    *,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario to run (repeat); default: all available."),
    ] = None,
    loads: Annotated[
        str, typer.Option(help="Open-loop offered loads, inquiries/s, comma-separated.")
    ] = "250,500,1000,2000",
    duration: Annotated[float, typer.Option(help="Seconds at each offered load.")] = 6.0,
    saturation: Annotated[float, typer.Option(help="Seconds of closed-loop saturation.")] = 10.0,
    warmup: Annotated[float, typer.Option(help="Seconds of warm-up before measuring.")] = 3.0,
    concurrency: Annotated[int, typer.Option(help="Inquiries in flight at saturation.")] = 256,
    payload_bytes: Annotated[int, typer.Option(help="Size of request and response values.")] = 300,
    partitions: Annotated[int, typer.Option(help="Partitions of every benchmark topic.")] = 6,
    out_dir: Annotated[Path, typer.Option(help="Where results are written.")] = Path(
        "bench/results"
    ),
    smoke: Annotated[
        bool, typer.Option(help="Tiny counts, a few seconds per scenario: checks the harness.")
    ] = False,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka to measure against (default: local broker).")
    ] = None,
    own_broker: Annotated[
        bool, typer.Option(help="Start a throwaway local broker even if one is running.")
    ] = False,
    plot: Annotated[bool, typer.Option(help="Write the PNG latency plot.")] = True,
    pending: Annotated[
        int, typer.Option(help="Inquiries pending for the worker memory figure (0: skip it).")
    ] = 100_000,
) -> None:
    """Measure each scenario: saturation throughput, latency at offered loads, CPU and RSS."""
    from exchange.bench._plan import SMOKE_PLAN, LoadPlan, parse_loads
    from exchange.bench._report import print_report, write_results
    from exchange.bench._runner import BenchConfig, run_bench

    console = Console(stderr=True)
    try:
        plan = (
            SMOKE_PLAN
            if smoke
            else LoadPlan(
                loads=parse_loads(loads),
                load_s=duration,
                saturation_s=saturation,
                warmup_s=warmup,
                concurrency=concurrency,
                pending=pending,
            )
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    names = _scenario_names(scenario)
    with _sigterm_as_interrupt(), _broker(bootstrap, own=own_broker, console=console) as broker:
        config = BenchConfig(
            bootstrap=broker.bootstrap,
            scenarios=names,
            plan=plan,
            partitions=partitions,
            payload_bytes=payload_bytes,
            kafka_version=broker.kafka_version,
            broker_pid=broker.pid,
        )
        console.print(f"benchmark against {broker.bootstrap}: {', '.join(names)}")
        doc = asyncio.run(run_bench(config, progress=console.print))
    # Logs and CI are not terminals: give the table room instead of rich's default 80 columns.
    print_report(doc, Console() if sys.stdout.isatty() else Console(width=132))
    for path in write_results(doc, out_dir, plot=plot):
        console.print(f"wrote {path}")
    failed = [name for name, res in doc["scenarios"].items() if "error" in res]
    if failed:
        raise BenchmarkError(f"scenario(s) failed: {', '.join(failed)}")
