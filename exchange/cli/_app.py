"""Root of the ``exchange`` command: each command group lives in its own module.

A group module defines a ``typer.Typer`` named ``app``; it is mounted here. Errors of the
bus's exception tree end the command with one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from exchange._errors import ExchangeError
from exchange.cli import (
    _answer,
    _audit,
    _bench,
    _broker,
    _catalog,
    _connector,
    _demo,
    _dlq,
    _evaluation,
    _inquire,
    _keys,
    _provide,
    _report,
    _schemas,
    _tail,
    _topics,
    _worker,
)

app = typer.Typer(
    name="exchange",
    help="The inter-agency inquiry exchange bus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """The inter-agency inquiry exchange bus."""


# Command groups are mounted below, one line each.
app.command(name="bench")(_bench.bench)
app.command(name="worker")(_worker.worker)
app.add_typer(_broker.app)
app.add_typer(_catalog.app)
app.add_typer(_schemas.app)
app.add_typer(_evaluation.app)
app.add_typer(_report.app)
app.add_typer(_topics.app)
app.add_typer(_dlq.app)
app.add_typer(_connector.app)
app.command(name="inquire")(_inquire.inquire)
app.command(name="provide")(_provide.provide)
app.add_typer(_tail.app)
app.add_typer(_answer.app)
app.command(name="demo")(_demo.demo)
app.add_typer(_audit.app)
app.add_typer(_keys.app)


@app.command()
def version() -> None:
    """Print the installed version of the bus."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("inquiry-exchange"))


def main() -> None:
    """Console entry point: run the app, turning bus errors into one line and exit code 1."""
    try:
        app()
    except ExchangeError as exc:
        # soft_wrap: one line however narrow the terminal; escape: messages may hold "[".
        console = Console(stderr=True, soft_wrap=True)
        console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        sys.exit(1)
