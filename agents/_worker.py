"""``exchange worker``: settings → catalog → schema store → engine, metrics, signals.

The catalog is the newest valid snapshot on ``<prefix>.catalog`` (else the files), and a
watcher swaps in each newly published one between batches (:mod:`agents._catalog_watch`).

One worker process runs one :class:`~agents.Engine` with the :class:`~agents._bus.BusProcessor`
in the consumer group ``<prefix>.workers``, subscribed to every ``<prefix>.out.*`` topic by
pattern. Scale-out is more processes (``--processes N`` here, or more hosts/containers) in the
same group: Kafka deals the partitions out, and a partition's state follows it through the
changelog. SIGTERM or SIGINT asks the engine to finish the batch in flight, commit it and leave
the group, which takes well under a few seconds; a second signal cancels at once.

With ``--processes N`` (N > 1) this process supervises N engine processes (spawned, so no
aiokafka state is inherited): it forwards SIGTERM/SIGINT, and if one of them dies unexpectedly
it stops the others and exits with that one's code, because a half-running worker would
hold partitions it does not serve. Their metrics go through prometheus_client's multiprocess
mode into a folder under the state dir, and this process serves the sum on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from agents._bus import BusProcessor
from agents._catalog_watch import CatalogWatcher, start_catalog
from agents._engine import Engine, EngineConfig
from agents._worker_metrics import EngineMonitor
from exchange._changelog import InquiryStateCodec
from exchange._codec import Codec
from exchange._errors import BrokerError, ConfigError, ExchangeError
from exchange._kafka import client_options, resolve_bootstrap
from exchange._logging import configure_logging
from exchange._metrics import CatalogMetrics, EngineMetrics, WorkerMetrics, serve_metrics
from exchange._settings import ExchangeSettings
from exchange._state import InquiryState
from exchange._topology import Topics

__all__ = ["WorkerOptions", "run_worker", "serve"]

log = structlog.get_logger("exchange.worker")

#: How often the worker looks for topics created since it started, s.
TOPIC_REFRESH = 10.0
#: How long the supervisor waits for its processes after forwarding a stop, then kills them.
STOP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How to run the workers; the rest comes from :class:`~exchange.ExchangeSettings`."""

    processes: int = 1
    batch_max_records: int = 2000

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ConfigError("--processes must be at least 1")


def run_worker(settings: ExchangeSettings, options: WorkerOptions) -> int:
    """Run until stopped by a signal; the process exit code (0 after a clean stop)."""
    configure_logging(settings.log_format, settings.log_level)
    if options.processes == 1:
        registry = CollectorRegistry()
        if settings.metrics_port is not None:
            _serve(registry, settings)
        asyncio.run(serve(settings, options, registry=registry))
        return 0
    return _supervise(settings, options)


async def serve(
    settings: ExchangeSettings,
    options: WorkerOptions,
    *,
    registry: CollectorRegistry,
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
    on_engine: Callable[[Engine[InquiryState]], None] | None = None,
) -> None:
    """Run one engine until SIGTERM/SIGINT (or ``engine.stop()``); raise if it fails."""
    bootstrap = resolve_bootstrap(settings)
    topics = Topics.for_settings(settings)
    existing = await _topic_partitions(bootstrap, settings, topics)
    # The newest valid snapshot on the catalog topic, else the files; then followed live.
    catalog_metrics = CatalogMetrics(registry)
    live, feed = await start_catalog(settings, topics.catalog, catalog_metrics)
    processor = BusProcessor(
        catalog=live.catalog,
        codec=Codec(live.store, max_record_bytes=settings.max_record_bytes),
        topics=topics,
        topic_partitions=existing,
        metrics=WorkerMetrics(registry),
        retention_ms=round(settings.settled_retention * 1000),
    )
    watcher = CatalogWatcher(
        processor, settings, topics.catalog, catalog_metrics, current=live, feed=feed
    )
    engine_metrics = EngineMetrics(registry)
    engine: Engine[InquiryState] = Engine(
        _engine_config(bootstrap, settings, topics, options),
        processor,
        InquiryStateCodec(),
        on_batch=engine_metrics.batch_seconds.observe,
    )
    if on_engine is not None:
        on_engine(engine)
    monitor = asyncio.create_task(EngineMonitor(engine, engine_metrics).run())
    refresher = asyncio.create_task(_refresh_topics(processor, bootstrap, settings, topics))
    watching = asyncio.create_task(watcher.run(), name="exchange-catalog-watcher")
    run = asyncio.create_task(engine.run(), name="exchange-engine")
    _install_signals(engine, run, signals)
    log.info("worker started", group=engine.config.application_id, pid=os.getpid())
    try:
        await run
    finally:
        for task in (monitor, refresher, watching):
            task.cancel()
        # Their failures only cost figures, a topic refresh or a catalog update; never hide
        # the engine's own.
        await asyncio.gather(monitor, refresher, watching, return_exceptions=True)
        log.info("worker stopped", stats=str(engine.stats))


def _engine_config(
    bootstrap: str, settings: ExchangeSettings, topics: Topics, options: WorkerOptions
) -> EngineConfig:
    return EngineConfig(
        bootstrap_servers=bootstrap,
        application_id=topics.worker_group,
        changelog_topic=topics.state,
        topic_pattern=topics.out_pattern,
        batch_max_records=options.batch_max_records,
        tick_interval=settings.worker_tick_interval,
        fetch_max_wait=settings.fetch_max_wait,
        commit_interval=settings.commit_interval,
        # New agencies' out topics join within this; a restart is not needed for them.
        topic_refresh_interval=TOPIC_REFRESH,
        client_options=client_options(settings),
    )


def _install_signals(
    engine: Engine[Any], run: asyncio.Task[None], signals: tuple[signal.Signals, ...]
) -> None:
    """First signal: drain and leave the group. Second: stop at once."""
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(signum: signal.Signals) -> None:
        nonlocal received
        received += 1
        log.info("stopping", signal=signum.name, forced=received > 1)
        if received == 1:
            engine.stop()
        else:
            run.cancel()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)


async def _topic_partitions(
    bootstrap: str, settings: ExchangeSettings, topics: Topics
) -> dict[str, int]:
    """Partition count of every topic of the bus that exists, checking the worker's own."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(settings))
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if topics.parse(name) is not None]
        described = await admin.describe_topics(names) if names else []
    except KafkaError as exc:
        raise BrokerError(f"cannot list the bus's topics: {exc!r}") from exc
    finally:
        await admin.close()
    counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    missing = [name for name in (topics.audit, topics.dlq, topics.state) if name not in counts]
    if missing:
        raise ConfigError(f"missing topics {', '.join(missing)}; run `exchange topics apply`")
    return counts


async def _refresh_topics(
    processor: BusProcessor, bootstrap: str, settings: ExchangeSettings, topics: Topics
) -> None:
    """Tell the processor which topics exist, every :data:`TOPIC_REFRESH` seconds."""
    while True:
        await asyncio.sleep(TOPIC_REFRESH)
        try:
            processor.set_topic_partitions(await _topic_partitions(bootstrap, settings, topics))
        except (BrokerError, ConfigError) as exc:  # keep the last known set; try again later
            log.warning("topic list not refreshed", error=exc.message)


def _serve(registry: Any, settings: ExchangeSettings) -> None:
    assert settings.metrics_port is not None
    port = serve_metrics(registry, host=settings.metrics_host, port=settings.metrics_port)
    log.info("serving metrics", url=f"http://{settings.metrics_host}:{port}/metrics")


# --- several processes ------------------------------------------------------------------------


def _supervise(settings: ExchangeSettings, options: WorkerOptions) -> int:
    """Run ``options.processes`` engine processes; stop them all when one fails or on a signal."""
    metrics_dir = None
    if settings.metrics_port is not None:
        metrics_dir = settings.state_dir / "worker-metrics" / str(os.getpid())
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        # Read by prometheus_client when the children import it (spawned, so fresh imports).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        _serve(_multiprocess_registry(metrics_dir), settings)
    context = multiprocessing.get_context("spawn")
    child_options = replace(options, processes=1)
    children = [
        context.Process(target=_child, args=(settings, child_options), name=f"exchange-worker-{i}")
        for i in range(options.processes)
    ]
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.pid is not None and child.exitcode is None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.start()
    log.info("workers started", pids=[child.pid for child in children])
    try:
        return _watch(children, lambda: stopping, metrics_dir)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _watch(children: list[Any], stopping: Callable[[], bool], metrics_dir: Path | None) -> int:
    """Wait for the children; the first unexpected exit stops the others."""
    code = 0
    alive = list(children)
    while alive:
        for sentinel in wait([child.sentinel for child in alive], timeout=1.0):
            child = next(c for c in alive if c.sentinel == sentinel)
            child.join()
            alive.remove(child)
            if metrics_dir is not None:
                _mark_dead(child.pid, metrics_dir)
            if child.exitcode != 0 and not stopping():
                log.error("worker process died", pid=child.pid, exitcode=child.exitcode)
                code = code or (child.exitcode if child.exitcode and child.exitcode > 0 else 1)
                _stop_all(alive)
    return code


def _stop_all(children: list[Any]) -> None:
    for child in children:
        if child.exitcode is None and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(STOP_TIMEOUT)
        if child.exitcode is None:
            child.kill()


def _child(settings: ExchangeSettings, options: WorkerOptions) -> None:
    """One engine process (the target of a spawned child); exits 1 if its engine fails."""
    # Ctrl-C reaches the whole process group; the supervisor turns it into one SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_format, settings.log_level)
    registry = CollectorRegistry()  # multiprocess mode: values go to files whatever it is
    try:
        asyncio.run(serve(settings, options, registry=registry, signals=(signal.SIGTERM,)))
    except ExchangeError as exc:
        # One line: the message says what failed; the traceback would only repeat it.
        log.error("worker process failed", error=exc.message, pid=os.getpid())  # noqa: TRY400
        sys.exit(1)


def _multiprocess_registry(path: Path) -> Any:
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    return registry


def _mark_dead(pid: int | None, path: Path) -> None:
    from prometheus_client import multiprocess

    if pid is not None:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
