"""``exchange worker``: run the bus's stream workers (route, enforce policy, correlate, time out).

Options override the matching ``EXCHANGE_*`` settings for this run. The workers need the bus's
topics (``exchange topics apply``) and exit 0 after SIGTERM/SIGINT once the batch in flight is
committed; non-zero when Kafka or a processor fails for good.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from exchange.cli._common import load_settings

ProcessesOption = typer.Option(
    1, "--processes", min=1, help="Engine processes in this worker, one consumer group."
)
MetricsPortOption = typer.Option(
    None, "--metrics-port", min=0, max=65535, help="Serve /metrics here (0: any free port)."
)
StateDirOption = typer.Option(
    None, "--state-dir", help="Folder for the workers' files (default EXCHANGE_STATE_DIR)."
)
CatalogOption = typer.Option(
    None, "--catalog", help="Catalog folder (default EXCHANGE_CATALOG_PATH)."
)


def worker(
    processes: int = ProcessesOption,
    metrics_port: int | None = MetricsPortOption,
    state_dir: Path | None = StateDirOption,
    catalog: Path | None = CatalogOption,
) -> None:
    """Run the stream workers until SIGTERM or Ctrl-C."""
    from agents._worker import WorkerOptions, run_worker  # the engine only when asked for

    settings = load_settings(
        quiet=False, metrics_port=metrics_port, state_dir=state_dir, catalog_path=catalog
    )
    sys.exit(run_worker(settings, WorkerOptions(processes=processes)))
