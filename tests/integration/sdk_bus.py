"""The bus the SDK tests run against: its topics and one real ``exchange worker``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from _worker_proc import WorkerProcess, bus_settings, create_bus_topics, running_worker

from exchange import ExchangeSettings


@contextlib.asynccontextmanager
async def real_bus(
    settings: ExchangeSettings, agencies: Sequence[str]
) -> AsyncIterator[ExchangeSettings]:
    """Create the agencies' and the bus-wide topics, run a worker owning every partition,
    and yield the settings to give the SDK (demo catalog, two partitions)."""
    configured = bus_settings(settings)
    await create_bus_topics(configured, agencies)
    with running_worker(configured) as worker:
        try:
            yield configured
        finally:
            worker.kill()
    _close_log(worker)


def _close_log(worker: WorkerProcess) -> None:
    """Close the worker's stderr pipe once its reader is done (the helper leaves it open)."""
    worker._reader.join(10)
    if worker.popen.stderr is not None:
        worker.popen.stderr.close()
