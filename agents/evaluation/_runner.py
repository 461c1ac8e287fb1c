"""Run the evaluation processor: start, publish, and stop on a signal or on a failure.

faust's own worker (``faust worker``, ``mode.Worker``) is not used: it logs a crashed agent
and keeps the process running, and it can take minutes to honour SIGTERM. This runner starts
the app inside the caller's event loop and ends on the first of: SIGTERM/SIGINT (exit 0
after a last publish), a crashed agent, a failed publish or a crashed faust service (exit 1),
so a supervisor (systemd, Kubernetes) sees the failure and restarts it. Stopping is bounded
by ``stop_timeout``; past it the exit code is 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from agents.evaluation._app import EvaluationApp, Topology, build_app
from agents.evaluation._options import EvaluationOptions
from exchange._codec import Codec, SchemaStore
from exchange._compliance_source import audit_partitions, ensure_output_topics
from exchange._kafka import client_options, resolve_bootstrap
from exchange._metrics import DlqMetrics, serve_metrics
from exchange._settings import ExchangeSettings

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STOP_TIMEOUT", "run"]

log = structlog.get_logger("exchange.evaluation")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOP_TIMEOUT = 2


def _codec(settings: ExchangeSettings) -> Codec:
    store = SchemaStore.from_directory(settings.schemas_path / "envelope")
    return Codec(store, max_record_bytes=settings.max_record_bytes)


async def run(
    settings: ExchangeSettings,
    options: EvaluationOptions,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[EvaluationApp], None] | None = None,
) -> int:
    """Run until stopped; the process exit code. ``stop`` lets a caller stop it too."""
    stop = stop or asyncio.Event()
    # faust logs a warning for every record written while its producer buffer applies
    # back-pressure (by design, during catch-up); that is noise, not news.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    bootstrap = resolve_bootstrap(settings)
    partitions = await audit_partitions(settings, bootstrap)
    await ensure_output_topics(settings, bootstrap)
    workdir = settings.state_dir / "evaluation"
    workdir.mkdir(parents=True, exist_ok=True)
    # faust keeps nothing there that outlives the run (memory store, changelogs in Kafka).
    datadir = Path(tempfile.mkdtemp(prefix="faust-", dir=workdir))
    try:
        evaluation = build_app(
            settings,
            options,
            Topology.for_settings(settings, partitions=partitions, datadir=datadir),
            bootstrap=bootstrap,
            client_options=client_options(settings),
            codec=_codec(settings),
        )
        evaluation.dlq_metrics = _metrics(settings)
        with _signals(stop):
            return await _serve(evaluation, stop, on_started)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def _metrics(settings: ExchangeSettings) -> DlqMetrics:
    """The processor's metrics, served on ``/metrics`` when a metrics port is set."""
    registry = CollectorRegistry()
    metrics = DlqMetrics(registry)
    if settings.metrics_port is not None:
        port = serve_metrics(registry, host=settings.metrics_host, port=settings.metrics_port)
        log.info("serving metrics", url=f"http://{settings.metrics_host}:{port}/metrics")
    return metrics


async def _serve(
    evaluation: EvaluationApp,
    stop: asyncio.Event,
    on_started: Callable[[EvaluationApp], None] | None,
) -> int:
    app = evaluation.app
    await app.start()
    publisher = asyncio.create_task(_publish_forever(evaluation), name="evaluation-publisher")
    log.info(
        "evaluation processor started",
        audit=evaluation.topology.audit,
        compliance=evaluation.topology.compliance,
        web=_web_url(evaluation),
    )
    if on_started is not None:
        on_started(evaluation)
    try:
        await _until_stopped(evaluation, stop, publisher)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await publisher
    if evaluation.failure is None:
        await _last_publish(evaluation)
    return await _stop_app(evaluation)


async def _until_stopped(
    evaluation: EvaluationApp, stop: asyncio.Event, publisher: asyncio.Task[None]
) -> None:
    """Wait for a stop request or a failure; faust's own crash state is polled."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(evaluation.failed.wait())]
    try:
        while not (stop.is_set() or evaluation.failed.is_set()):
            await asyncio.wait([*waiters, publisher], timeout=0.5, return_when="FIRST_COMPLETED")
            if publisher.done() and not evaluation.failed.is_set():
                evaluation.fail(publisher.exception() or RuntimeError("publisher ended"))
            if evaluation.app.crashed and not evaluation.failed.is_set():
                evaluation.fail(evaluation.app.crash_reason or RuntimeError("faust crashed"))
    finally:
        for waiter in waiters:
            waiter.cancel()
    if evaluation.failure is not None:
        log.error("evaluation processor failed; stopping", error=repr(evaluation.failure))


async def _publish_forever(evaluation: EvaluationApp) -> None:
    send = _sender(evaluation)
    while True:
        await asyncio.sleep(evaluation.options.publish_interval)
        await evaluation.publisher.flush(send)


async def _last_publish(evaluation: EvaluationApp) -> None:
    try:
        async with asyncio.timeout(evaluation.options.stop_timeout / 2):
            await evaluation.publisher.flush(_sender(evaluation))
    except (TimeoutError, Exception) as exc:
        # Not fatal: the next run republishes every window it recovers.
        log.warning("last publish failed", error=repr(exc))


def _sender(evaluation: EvaluationApp) -> Callable[[list[tuple[bytes, bytes]]], Any]:
    topic = evaluation.compliance_topic

    async def send(records: list[tuple[bytes, bytes]]) -> None:
        futures = [await topic.send(key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)

    return send


async def _stop_app(evaluation: EvaluationApp) -> int:
    code = EXIT_OK if evaluation.failure is None else EXIT_FAILED
    try:
        async with asyncio.timeout(evaluation.options.stop_timeout):
            await evaluation.app.stop()
    except TimeoutError:
        code = EXIT_STOP_TIMEOUT
    if code == EXIT_STOP_TIMEOUT:
        log.error("faust did not stop in time", timeout=evaluation.options.stop_timeout)
        return code
    log.info("evaluation processor stopped", exit_code=code, **evaluation.counts)
    return code


def _web_url(evaluation: EvaluationApp) -> str | None:
    options = evaluation.options
    if options.web_port is None:
        return None
    return f"http://{options.web_host}:{options.web_port}/compliance/"


@contextlib.contextmanager
def _signals(stop: asyncio.Event) -> Any:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
