"""Run the evaluation processor: start, publish, and stop on a signal or on a failure.

faust's own worker (``faust worker``, ``mode.Worker``) is not used: it logs a crashed agent
and keeps the process running, and it can take minutes to honour SIGTERM. This runner starts
the app inside the caller's event loop and ends on the first of: SIGTERM/SIGINT (exit 0
after a last publish), a crashed agent, a failed publish or a crashed faust service (exit 1),
a stall (exit 3: records to process, or a rebalance or table recovery to finish, and no
progress for ``EXCHANGE_EVALUATION_STALL`` seconds; see :mod:`agents.evaluation._watchdog`),
so a supervisor (systemd, Kubernetes) sees the failure and restarts it. Stopping is bounded
by ``stop_timeout``; past it the exit code is 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from agents.evaluation._app import EvaluationApp, Topology, build_app
from agents.evaluation._options import EvaluationOptions
from agents.evaluation._watchdog import run_watchdog
from exchange._codec import Codec, SchemaStore
from exchange._compliance_source import audit_partitions, ensure_output_topics
from exchange._errors import ProcessorStalledError
from exchange._kafka import client_options, resolve_bootstrap
from exchange._metrics import DlqMetrics, serve_metrics
from exchange._settings import ExchangeSettings

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STALLED", "EXIT_STOP_TIMEOUT", "run", "run_process"]

log = structlog.get_logger("exchange.evaluation")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOP_TIMEOUT = 2
EXIT_STALLED = 3


def _codec(settings: ExchangeSettings) -> Codec:
    store = SchemaStore.from_directory(settings.schemas_path / "envelope")
    return Codec(store, max_record_bytes=settings.max_record_bytes)


def run_process(settings: ExchangeSettings, options: EvaluationOptions) -> int:
    """Run the processor as this process's main program until stopped; the exit code.

    When faust did not stop in time (exit 2, or 3 after a stall) its tasks and its consumer
    thread are left behind, and closing the event loop or leaving the interpreter would wait
    for them, maybe forever: the process then ends at once (``os._exit``).
    """
    started: list[EvaluationApp] = []
    with asyncio.Runner() as runner:
        code = runner.run(run(settings, options, on_started=started.append))
        if started and started[0].abandoned:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


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
            return await _serve(evaluation, settings, stop, on_started)
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
    settings: ExchangeSettings,
    stop: asyncio.Event,
    on_started: Callable[[EvaluationApp], None] | None,
) -> int:
    app = evaluation.app
    await app.start()
    publisher = asyncio.create_task(_publish_forever(evaluation), name="evaluation-publisher")
    watchdog = asyncio.create_task(
        run_watchdog(evaluation, settings, settings.evaluation_stall), name="evaluation-watchdog"
    )
    log.info(
        "evaluation processor started",
        audit=evaluation.topology.audit,
        compliance=evaluation.topology.compliance,
        web=_web_url(evaluation),
    )
    if on_started is not None:
        on_started(evaluation)
    try:
        await _until_stopped(evaluation, stop, publisher, watchdog)
    finally:
        for task in (publisher, watchdog):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if evaluation.failure is None:
        await _last_publish(evaluation)
    return await _stop_app(evaluation)


async def _until_stopped(
    evaluation: EvaluationApp,
    stop: asyncio.Event,
    publisher: asyncio.Task[None],
    watchdog: asyncio.Task[None],
) -> None:
    """Wait for a stop request or a failure; faust's own crash state is polled."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(evaluation.failed.wait())]
    try:
        while not (stop.is_set() or evaluation.failed.is_set()):
            await asyncio.wait([*waiters, publisher], timeout=0.5, return_when="FIRST_COMPLETED")
            if publisher.done() and not evaluation.failed.is_set():
                evaluation.fail(publisher.exception() or RuntimeError("publisher ended"))
            if watchdog.done() and not evaluation.failed.is_set():
                # It returns only after recording a stall: anything else is a bug, loudly.
                evaluation.fail(watchdog.exception() or RuntimeError("watchdog ended"))
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
    stalled = isinstance(evaluation.failure, ProcessorStalledError)
    code = EXIT_OK if evaluation.failure is None else EXIT_STALLED if stalled else EXIT_FAILED
    # asyncio.wait, not asyncio.timeout: faust can swallow the cancellation a timeout relies
    # on (Consumer.wait_empty waits for an agent that never acks, and ignores CancelledError).
    stopping = asyncio.ensure_future(evaluation.app.stop())
    done, _ = await asyncio.wait({stopping}, timeout=evaluation.options.stop_timeout)
    if not done:
        evaluation.abandoned = True
        code = code if stalled else EXIT_STOP_TIMEOUT
        log.error(
            "faust did not stop in time", timeout=evaluation.options.stop_timeout, exit_code=code
        )
        return code
    stopping.result()
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
