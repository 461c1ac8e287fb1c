"""``exchange broker``: run a real single-node Kafka broker on this machine, without Docker.

``start`` prints ``bootstrap=127.0.0.1:PORT`` on stdout (the one line scripts read) and records
the address in the state dir, where every other ``exchange`` command finds it. Setting
``EXCHANGE_KAFKA_BOOTSTRAP`` points the bus at an existing cluster instead.
"""

from __future__ import annotations

import asyncio
import sys
import time

import typer

from exchange._errors import BrokerError
from exchange.cli._common import load_settings

app = typer.Typer(
    name="broker",
    help="Start, stop and inspect the local Kafka broker.",
    no_args_is_help=True,
)

#: ``status`` exit code when the broker is not running (as LSB init scripts do).
EXIT_STOPPED = 3


def _note(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def start(
    port: int | None = typer.Option(None, help="Listener port (default: a free one, then kept)."),
    fresh: bool = typer.Option(False, "--fresh", help="Wipe the data dir and format a new one."),
    timeout: float = typer.Option(90.0, help="Seconds to wait until the broker serves."),
) -> None:
    """Start the local broker in the background and print its bootstrap address."""
    from exchange._local_broker import LocalBroker, local_broker_home

    settings = load_settings()
    broker = LocalBroker(local_broker_home(settings))
    already = broker.running()
    began = time.monotonic()
    running = broker.start(port=port, fresh=fresh, timeout=timeout)
    if already is not None:
        _note(f"already running (pid {running.pid})")
    else:
        took = time.monotonic() - began
        _note(f"started Kafka {running.kafka_version} (pid {running.pid}) in {took:.1f} s")
    if settings.kafka_bootstrap:
        _note(f"note: EXCHANGE_KAFKA_BOOTSTRAP is set, so commands use {settings.kafka_bootstrap}")
    typer.echo(f"bootstrap={running.bootstrap}")


@app.command()
def stop(
    timeout: float = typer.Option(30.0, help="Seconds to wait after SIGTERM before SIGKILL."),
) -> None:
    """Stop the local broker (its data is kept for the next start)."""
    from exchange._local_broker import LocalBroker, local_broker_home

    stopped = LocalBroker(local_broker_home(load_settings())).stop(timeout)
    typer.echo("stopped" if stopped else "not running")


@app.command()
def status() -> None:
    """Say whether the broker is running and where (exit code 3 when stopped)."""
    from exchange._kafka import check_reachable, client_options
    from exchange._local_broker import LocalBroker, local_broker_home

    settings = load_settings()
    if settings.kafka_bootstrap:
        info = asyncio.run(
            check_reachable(
                settings.kafka_bootstrap, settings.request_timeout, client_options(settings)
            )
        )
        typer.echo(
            f"external bootstrap={settings.kafka_bootstrap} reachable "
            f"cluster_id={info.cluster_id} brokers={info.broker_count}"
        )
        return
    running = LocalBroker(local_broker_home(settings)).running()
    if running is None:
        typer.echo("stopped")
        sys.exit(EXIT_STOPPED)
    typer.echo(
        f"running bootstrap={running.bootstrap} pid={running.pid} "
        f"kafka={running.kafka_version} since={running.started_at}"
    )


@app.command()
def fetch() -> None:
    """Download the pinned Kafka release's jars into the cache (Maven; once)."""
    from exchange._kafka_jars import ensure_jars

    dist = ensure_jars()
    typer.echo(f"kafka={dist.version} jars={dist.libs_dir}")


@app.command()
def log(lines: int = typer.Option(60, "-n", "--lines", help="How many lines.")) -> None:
    """Print the end of the local broker's log."""
    from exchange._local_broker import LocalBroker, local_broker_home

    typer.echo(LocalBroker(local_broker_home(load_settings())).log_tail(lines))


@app.command()
def check() -> None:
    """Round-trip one Avro record through the cluster (throwaway topic) and show it."""
    from exchange._kafka import client_options, resolve_bootstrap
    from exchange._kafka_smoke import round_trip

    settings = load_settings()
    bootstrap = resolve_bootstrap(settings)
    result = asyncio.run(round_trip(bootstrap, client_options(settings), settings.topic_prefix))
    typer.echo(
        f"round trip via {bootstrap}: topic={result.topic} partition={result.partition} "
        f"offset={result.offset} bytes={result.size} took={result.seconds * 1000:.0f}ms "
        f"identical={'yes' if result.identical else 'NO'}"
    )
    typer.echo(f"decoded Avro record: {result.decoded}")
    if not result.identical:
        raise BrokerError("the record came back with different bytes")
