"""Kafka I/O of the compliance figures: the topics, and reading them for a report.

The thin I/O around :mod:`exchange._compliance_plan`: read the compacted compliance topic to
its end, plan per audit partition, read each audit partition from where its plan says
(``read_committed``: records of aborted transactions are not part of the trail), decode with
the bus's codec and combine. Undecodable audit records are counted, never folded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from exchange._codec import Codec
from exchange._compliance import AuditFacts, Figures, WindowKey, facts_from_record
from exchange._compliance_plan import CLOCK_SLACK_MS, PartitionPlan, combine, plan
from exchange._compliance_topic import ComplianceState
from exchange._errors import BrokerError, CodecError, ConfigError
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings
from exchange._topology import TopologyConfig, compliance_configs
from exchange._wire import AUDIT_RECORD

__all__ = [
    "ComplianceReading",
    "audit_partitions",
    "compliance_topic",
    "compliance_topic_config",
    "ensure_output_topics",
    "read_compliance",
    "read_figures",
]


#: How long a reader waits for records it knows are there before it gives up.
READ_TIMEOUT = 60.0


def compliance_topic(settings: ExchangeSettings) -> str:
    """``<prefix>.compliance``."""
    return f"{settings.topic_prefix}.compliance"


def compliance_topic_config(settings: ExchangeSettings) -> dict[str, str]:
    """The compliance topic's configs, as ``exchange topics apply`` sets them.

    Compacted: the latest value per window partial and per coverage key is all that matters;
    ``min.compaction.lag.ms`` keeps a record uncompacted for an hour, so a reader that reads to
    a snapshot of the end never loses a value to a newer one written after its snapshot. With
    ``EXCHANGE_COMPLIANCE_RETENTION`` also deleted: a window's figures go once their last
    publication is that old (reports then read the audit topic for it).
    """
    retention = TopologyConfig.from_settings(settings).compliance_retention_ms
    return dict(compliance_configs(retention))


def _audit_topic(settings: ExchangeSettings) -> str:
    return f"{settings.topic_prefix}.audit"


def _options(settings: ExchangeSettings, bootstrap: str | None) -> dict[str, Any]:
    return {
        **kafka_options(settings, bootstrap=bootstrap),
        "request_timeout_ms": round(settings.request_timeout * 1000),
    }


async def _partition_count(settings: ExchangeSettings, bootstrap: str | None, topic: str) -> int:
    """Partitions of ``topic``; 0 when it does not exist."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**_options(settings, bootstrap))
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    except KafkaError as exc:
        raise BrokerError(f"cannot describe {topic}: {exc}") from exc
    finally:
        await admin.close()
    found = [t for t in described if t["topic"] == topic and t["error_code"] == 0]
    return len(found[0]["partitions"]) if found else 0


async def audit_partitions(settings: ExchangeSettings, bootstrap: str | None = None) -> int:
    """The partition count of ``<prefix>.audit``; :class:`ConfigError` if it does not exist."""
    topic = _audit_topic(settings)
    count = await _partition_count(settings, bootstrap, topic)
    if not count:
        raise ConfigError(f"topic {topic} does not exist: create the bus's topics first")
    return count


async def ensure_output_topics(settings: ExchangeSettings, bootstrap: str | None = None) -> None:
    """Create ``<prefix>.compliance`` (one partition, compacted) and ``<prefix>.dlq`` if missing.

    One partition: the topic is small (aggregates), and one total order lets readers rely on
    a flush's partials coming before its coverage records.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    rf = settings.replication_factor
    wanted = {
        compliance_topic(settings): NewTopic(
            compliance_topic(settings), 1, rf, topic_configs=compliance_topic_config(settings)
        ),
        f"{settings.topic_prefix}.dlq": NewTopic(
            f"{settings.topic_prefix}.dlq", settings.partitions, rf
        ),
    }
    admin = AIOKafkaAdminClient(**_options(settings, bootstrap))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [new for name, new in wanted.items() if name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            # 36: TOPIC_ALREADY_EXISTS (another process won the race)
            errors = [(n, c, m) for n, c, m in response.topic_errors if c not in (0, 36)]
            if errors:
                raise BrokerError(f"cannot create topics: {errors}")
    except KafkaError as exc:
        raise BrokerError(f"cannot create the evaluation topics: {exc}") from exc
    finally:
        await admin.close()


async def _read_to_end(consumer: Any, starts: dict[Any, int | None], sink: Any) -> None:
    """Read every assigned partition from its start to the end offset seen now."""
    ends = await consumer.end_offsets(list(starts))
    for tp, start in starts.items():
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
    pending = {tp for tp in starts if await consumer.position(tp) < ends[tp]}
    async with asyncio.timeout(READ_TIMEOUT):
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        sink(tp.partition, record)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}


def _consumer(settings: ExchangeSettings, bootstrap: str | None) -> Any:
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        **_options(settings, bootstrap),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )


async def read_compliance(
    settings: ExchangeSettings, bootstrap: str | None = None
) -> ComplianceState:
    """The latest record per key of ``<prefix>.compliance``; empty when it does not exist."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    state = ComplianceState()
    topic = compliance_topic(settings)
    count = await _partition_count(settings, bootstrap, topic)
    if not count:
        return state
    consumer = _consumer(settings, bootstrap)
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(tps)
        await _read_to_end(consumer, dict.fromkeys(tps), lambda _p, r: state.apply(r.value))
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(f"cannot read {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return state


@dataclass(slots=True)
class ComplianceReading:
    """Figures per window for a range, and how they were obtained."""

    figures: dict[WindowKey, Figures]
    plans: list[PartitionPlan]
    audit_records_read: int
    undecodable: int
    compliance_unreadable: int


async def read_figures(
    settings: ExchangeSettings,
    codec: Codec,
    since_ms: int,
    until_ms: int,
    *,
    by_hour: bool = False,
    bootstrap: str | None = None,
) -> ComplianceReading:
    """Figures for ``[since_ms, until_ms)``: the processor's, topped up from the audit topic."""
    state = await read_compliance(settings, bootstrap)
    count = await audit_partitions(settings, bootstrap)
    plans = plan(
        state, range(count), since_ms, until_ms, by_hour=by_hour, held_from_ms=_held_from(settings)
    )
    audit, undecodable = await _read_audit(settings, codec, plans, bootstrap)
    return ComplianceReading(
        combine(state, plans, audit), plans, len(audit), undecodable, state.unreadable
    )


def _held_from(settings: ExchangeSettings) -> int | None:
    """Windows before this may have been deleted from the compliance topic by its retention.

    A window's last partial was published after a record of it was written, so at or after
    the window's start less the writers' clock slack; retention deletes a record only once
    its publication is older than the retention.
    """
    retention = settings.compliance_retention
    if retention is None:
        return None
    return round((time.time() - retention) * 1000) + CLOCK_SLACK_MS


async def _read_audit(
    settings: ExchangeSettings, codec: Codec, plans: list[PartitionPlan], bootstrap: str | None
) -> tuple[list[tuple[int, int, AuditFacts]], int]:
    from aiokafka.errors import KafkaError

    topic = _audit_topic(settings)
    out: list[tuple[int, int, AuditFacts]] = []
    undecodable = 0

    def sink(partition: int, record: Any) -> None:
        nonlocal undecodable
        try:
            facts = facts_from_record(codec.decode(record.value, reader=AUDIT_RECORD))
        except (CodecError, ValueError, KeyError, TypeError):
            undecodable += 1
            return
        out.append((partition, record.offset, facts))

    consumer = _consumer(settings, bootstrap)
    try:
        await consumer.start()
        starts = await _audit_starts(consumer, topic, plans)
        consumer.assign(list(starts))
        await _read_to_end(consumer, starts, sink)
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(f"cannot read {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return out, undecodable


async def _audit_starts(
    consumer: Any, topic: str, plans: list[PartitionPlan]
) -> dict[Any, int | None]:
    """Where to read each audit partition: a planned offset, or by time for windows not held."""
    from aiokafka import TopicPartition

    by_time = {
        TopicPartition(topic, p.partition): p.read_from_time_ms
        for p in plans
        if p.read_from_offset is None
    }
    found = await consumer.offsets_for_times(by_time) if by_time else {}
    starts: dict[Any, int | None] = {}
    ends = await consumer.end_offsets([TopicPartition(topic, p.partition) for p in plans])
    for p in plans:
        tp = TopicPartition(topic, p.partition)
        if p.read_from_offset is not None:
            starts[tp] = p.read_from_offset
        else:
            hit = found.get(tp)
            # No record at or after that time: nothing to read (start at the end).
            starts[tp] = hit.offset if hit is not None else ends[tp]
    return starts
