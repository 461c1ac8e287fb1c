"""``exchange evaluation run``: the faust evaluation processor (windowed compliance figures).

Reads ``<prefix>.audit``, keeps hourly and daily figures per provider agency and service and
per requester, publishes them to ``<prefix>.compliance`` and serves them on
``http://127.0.0.1:<port>/compliance/``. Exits 0 on SIGTERM/SIGINT, 1 when processing failed
(a crashed agent never leaves the process running idle), 2 when faust did not stop in time,
3 when it stalled (``EXCHANGE_EVALUATION_STALL``).
"""

from __future__ import annotations

import typer

from exchange.cli._common import load_settings

app = typer.Typer(
    name="evaluation",
    help="Run the evaluation processor (compliance figures from the audit trail).",
    no_args_is_help=True,
)


@app.command()
def run(  # a command with many options: the CLI is where they belong
    *,
    web_port: int = typer.Option(6066, min=1, max=65535, help="Port of the /compliance/ view."),
    web_host: str = typer.Option("127.0.0.1", help="Address the web view binds to."),
    no_web: bool = typer.Option(False, "--no-web", help="Serve no web view."),
    publish_interval: float = typer.Option(
        1.0, min=0.05, help="Seconds between publishes to <prefix>.compliance."
    ),
    hour_expires: float = typer.Option(
        48.0, min=1.0, help="Hours an hourly window stays live after it closes."
    ),
    day_expires: float = typer.Option(
        8.0, min=1.0, help="Days a daily window stays live after it closes."
    ),
    stop_timeout: float = typer.Option(15.0, min=1.0, help="Seconds allowed for stopping."),
) -> None:
    """Run the evaluation processor until SIGTERM or SIGINT."""
    from agents.evaluation import EvaluationOptions, run_process

    settings = load_settings(quiet=False)
    options = EvaluationOptions(
        web_port=None if no_web else web_port,
        web_host=web_host,
        publish_interval=publish_interval,
        hour_expires=hour_expires * 3600,
        day_expires=day_expires * 86400,
        stop_timeout=stop_timeout,
    )
    # run_process ends the process itself when faust did not stop in time.
    raise typer.Exit(run_process(settings, options))
