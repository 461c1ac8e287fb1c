"""The faust app of the evaluation processor: audit records in, windowed figures out.

One agent reads ``<prefix>.audit`` as raw bytes, decodes each record with the bus's codec
(undecodable records go to ``<prefix>.dlq`` with the reason in headers; the agent goes on),
and feeds it to the pure step in :mod:`exchange._evaluation`, which says what to write to
two tumbling windowed tables (hour and day; key: dimension and audit partition) and to a
coverage table (key: audit partition). The tables' changelogs are
``<prefix>.evaluation-<table>-changelog``. A publisher task sends the changed windows to
``<prefix>.compliance``; ``/compliance/`` serves the live windows as JSON.

faust holds the state; every decision is in ``exchange``: this module only moves values
between the two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import mode
import structlog

from agents.evaluation._options import EvaluationOptions
from agents.evaluation._publisher import Publisher
from agents.evaluation._transport import ReadCommittedTransport
from exchange._codec import Codec
from exchange._compliance import (
    EMPTY,
    Dimension,
    Figures,
    Granularity,
    WindowKey,
    facts_from_record,
    merge,
)
from exchange._compliance_report import ReportRow, iso
from exchange._errors import CodecError
from exchange._evaluation import PartitionCoverage, WindowValue, step
from exchange._metrics import DlqMetrics
from exchange._models import DeadLetter
from exchange._settings import ExchangeSettings
from exchange._wire import AUDIT_RECORD

__all__ = ["EvaluationApp", "Topology", "build_app"]

log = structlog.get_logger("exchange.evaluation")

COMPONENT = "evaluation"


@dataclass(frozen=True, slots=True)
class Topology:
    """The topics the processor reads and writes, and where faust keeps its files."""

    audit: str
    dlq: str
    compliance: str
    partitions: int
    datadir: Path

    @classmethod
    def for_settings(
        cls, settings: ExchangeSettings, *, partitions: int, datadir: Path
    ) -> Topology:
        """The bus's topic names under the configured prefix."""
        prefix = settings.topic_prefix
        return cls(f"{prefix}.audit", f"{prefix}.dlq", f"{prefix}.compliance", partitions, datadir)


def table_key(dimension: Dimension, partition: int) -> str:
    """A live-table key: one dimension's partial from one audit partition."""
    return f"{dimension.kind}|{dimension.agency}|{dimension.service}|p{partition}"


def parse_table_key(text: str) -> tuple[Dimension, int]:
    """Inverse of :func:`table_key`."""
    kind, agency, service, partition = text.split("|")
    return Dimension(kind, agency, service), int(partition.removeprefix("p"))


class _Clock:
    """The time faust's windowed tables place the next read or write at (seconds).

    The step computes each window itself; pointing the tables' relative time at that
    window's start makes faust use exactly the same window. The agent runs at concurrency
    1 and sets it right before each table access, with no await in between.
    """

    at: float = 0.0

    def __call__(self, event: Any = None) -> float:
        return self.at


class _App(faust.App):
    """faust's App with a consumer that reads only committed records."""

    def _new_transport(self) -> Any:
        return ReadCommittedTransport(self.conf.broker_consumer, self)


@dataclass
class EvaluationApp:
    """The built app and what the runner watches: the publisher and the first failure."""

    app: Any
    topology: Topology
    options: EvaluationOptions
    codec: Codec
    publisher: Publisher = field(default_factory=Publisher)
    failure: BaseException | None = None
    #: faust did not stop in time and was left running (its tasks may ignore cancellation).
    abandoned: bool = False
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("processed", "dead_lettered", "duplicates", "too_late"), 0
        )
    )
    tables: dict[Granularity, Any] = field(default_factory=dict)
    coverage_table: Any = None
    compliance_topic: Any = None
    dlq_metrics: DlqMetrics | None = None
    clock: _Clock = field(default_factory=_Clock)

    def fail(self, exc: BaseException) -> None:
        """Record the first failure; the runner stops the worker with a non-zero exit."""
        if self.failure is None:
            self.failure = exc
        self.failed.set()

    # --- table access (inside stream iteration only) ------------------------------------------

    def lookup(self, window: WindowKey, partition: int) -> WindowValue | None:
        """The live value of one window partial."""
        self.clock.at = window.start_ms / 1000
        try:
            raw = self.tables[window.granularity][table_key(window.dimension, partition)].value()
        except KeyError:
            return None
        return None if raw is None else WindowValue.from_json(raw)

    def write(self, window: WindowKey, partition: int, value: WindowValue) -> None:
        """Set one window partial (faust sends the change to the table's changelog)."""
        self.clock.at = window.start_ms / 1000
        self.tables[window.granularity][table_key(window.dimension, partition)] = value.to_json()
        self.publisher.wrote(window, partition, value)

    def coverage_of(self, partition: int) -> PartitionCoverage | None:
        """The partition's coverage as the coverage table holds it."""
        raw = self.coverage_table.get(str(partition))
        return None if raw is None else PartitionCoverage.from_json(raw)

    # --- reading the live windows (web view, recovery) ----------------------------------------

    def live(self) -> Iterator[tuple[WindowKey, int, WindowValue]]:
        """Every window partial the tables hold (this worker's partitions only)."""
        for granularity, wrapper in self.tables.items():
            for (text, window_range), raw in list(wrapper.table.data.items()):
                if raw is None:
                    continue
                dimension, partition = parse_table_key(text)
                start_ms = round(window_range[0] * 1000)
                window = WindowKey(granularity, start_ms, dimension)
                yield window, partition, WindowValue.from_json(raw)


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def _credentials(options: Mapping[str, Any]) -> Any:
    """faust credentials from ``exchange._kafka.client_options``; None for PLAINTEXT."""
    protocol = options["security_protocol"]
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return None


def build_app(
    settings: ExchangeSettings,
    options: EvaluationOptions,
    topology: Topology,
    *,
    bootstrap: str,
    client_options: Mapping[str, Any],
    codec: Codec,
) -> EvaluationApp:
    """Build (not start) the faust app and wire its agent, tables and web view."""
    app = _App(
        f"{settings.topic_prefix}.evaluation",
        broker=_broker_urls(bootstrap),
        broker_credentials=_credentials(client_options),
        store="memory://",
        datadir=str(topology.datadir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_partitions=topology.partitions,
        topic_replication_factor=settings.replication_factor,
        table_cleanup_interval=options.table_cleanup_interval,
        broker_session_timeout=options.session_timeout,
        broker_heartbeat_interval=min(3.0, options.session_timeout / 3),
        web_enabled=options.web_port is not None,
        web_bind=options.web_host,
        web_host=options.web_host,
        web_port=options.web_port or 6066,
    )
    evaluation = EvaluationApp(app, topology, options, codec)
    evaluation.compliance_topic = app.topic(
        topology.compliance, key_serializer="raw", value_serializer="raw"
    )
    _tables(evaluation)
    _agent(evaluation)
    if options.web_port is not None:
        _web_view(evaluation)
    return evaluation


def _tables(evaluation: EvaluationApp) -> None:
    app, options = evaluation.app, evaluation.options
    schema: Any = faust.Schema(key_serializer="json", value_serializer="json")
    expires = options.expires_ms()
    for granularity in Granularity:
        table = app.Table(
            granularity.value,
            default=None,
            partitions=evaluation.topology.partitions,
            schema=schema,
            help=f"Compliance figures per {granularity}, dimension and audit partition.",
        )
        wrapper = table.tumbling(
            granularity.size_ms / 1000, expires=expires[granularity] / 1000
        ).relative_to(evaluation.clock)
        table.on_recover(_republish(evaluation))
        evaluation.tables[granularity] = wrapper
    evaluation.coverage_table = app.Table(
        "coverage",
        default=None,
        partitions=evaluation.topology.partitions,
        schema=schema,
        help="Per audit partition: from which window on the figures are complete.",
    )


def _republish(evaluation: EvaluationApp) -> Any:
    async def on_recover() -> None:
        # The changelog holds windows whose last value may never have been published (the
        # previous run stopped between a write and a flush): publish all of them again.
        for window, partition, value in evaluation.live():
            evaluation.publisher.wrote(window, partition, value)

    return on_recover


def _agent(evaluation: EvaluationApp) -> None:
    app: faust.App = evaluation.app
    topology = evaluation.topology
    audit = app.topic(topology.audit, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(topology.dlq, key_serializer="raw", value_serializer="raw")

    # concurrency=1 is required, not a tuning choice: with several actors per agent,
    # faust-streaming can commit an offset past a record another actor is still processing
    # (faust-streaming/faust#606, "Wrong offset commit in case of gaps"), losing it on restart.
    # ForfeitOneForOneSupervisor: a crashed agent is not restarted behind our back; the
    # agent records the failure and the runner stops the worker with a non-zero exit.
    @app.agent(audit, concurrency=1, supervisor_strategy=mode.ForfeitOneForOneSupervisor)
    async def evaluate(stream: Any) -> None:
        try:
            async for event in stream.events():
                await _handle(evaluation, dlq, event.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("evaluation agent crashed", error=repr(exc), exc_info=True)
            evaluation.fail(exc)
            raise

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        evaluation.publisher.forget(tp.partition for tp in revoked if tp.topic == topology.audit)

    app.on_partitions_revoked.connect(on_revoked)


async def _handle(evaluation: EvaluationApp, dlq: Any, message: Any) -> None:
    partition, offset = message.partition, message.offset
    try:
        facts = facts_from_record(evaluation.codec.decode(message.value, reader=AUDIT_RECORD))
    except (CodecError, ValueError, KeyError, TypeError) as exc:
        await _dead_letter(evaluation, dlq, message, exc)
        evaluation.publisher.processed(partition, offset, evaluation.coverage_of(partition))
        return
    result = step(
        facts,
        offset,
        log_time_ms=round(message.timestamp * 1000),
        now_ms=round(time.time() * 1000),
        expires_ms=evaluation.options.expires_ms(),
        coverage=evaluation.coverage_of(partition),
        lookup=lambda window: evaluation.lookup(window, partition),
        clock_slack_ms=round(evaluation.options.clock_slack * 1000),
    )
    for window, value in result.writes:
        evaluation.write(window, partition, value)
    if result.coverage is not None:
        evaluation.coverage_table[str(partition)] = result.coverage.to_json()
    evaluation.counts["processed"] += 1
    evaluation.counts["duplicates"] += result.duplicate
    evaluation.counts["too_late"] += bool(result.too_late)
    evaluation.publisher.processed(partition, offset, evaluation.coverage_of(partition))


async def _dead_letter(evaluation: EvaluationApp, dlq: Any, message: Any, exc: Exception) -> None:
    reason = exc.reason if isinstance(exc, CodecError) else "processing-error"
    letter = DeadLetter(
        reason=reason,
        message=str(exc)[:500],
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        source_timestamp=datetime.fromtimestamp(message.timestamp, UTC),
        original_key=message.key,
        dead_lettered_at=datetime.now(UTC),
        component=COMPONENT,
    )
    await dlq.send(key=message.key, value=message.value, headers=letter.headers())
    evaluation.counts["dead_lettered"] += 1
    if evaluation.dlq_metrics is not None:
        evaluation.dlq_metrics.records.labels(component=COMPONENT, reason=reason).inc()
    log.warning(
        "audit record dead-lettered",
        reason=reason,
        partition=message.partition,
        offset=message.offset,
    )


def _web_view(evaluation: EvaluationApp) -> None:
    @evaluation.app.page("/compliance/")  # type: ignore[untyped-decorator]  # faust is untyped
    async def compliance(web: Any, request: Any) -> Any:
        query = request.query
        return web.json(
            live_windows(
                evaluation,
                granularity=query.get("granularity"),
                kind=query.get("kind"),
                agency=query.get("agency"),
            )
        )


def live_windows(
    evaluation: EvaluationApp,
    *,
    granularity: str | None = None,
    kind: str | None = None,
    agency: str | None = None,
) -> dict[str, Any]:
    """The live windows, partials merged over this worker's partitions, as JSON."""
    merged: dict[WindowKey, Figures] = {}
    partitions: set[int] = set()
    for window, partition, value in evaluation.live():
        dim = window.dimension
        if granularity and window.granularity != granularity:
            continue
        if (kind and dim.kind != kind) or (agency and dim.agency != agency):
            continue
        merged[window] = merge(merged.get(window, EMPTY), value.figures)
        partitions.add(partition)
    return {
        "partitions": sorted(partitions),
        "windows": [
            {
                "granularity": str(window.granularity),
                "start": iso(window.start_ms),
                "end": iso(window.end_ms),
                **ReportRow(window.dimension, window.start_ms, figures).summary(),
                "figures": figures.to_json(),
            }
            for window, figures in sorted(merged.items())
        ],
    }
