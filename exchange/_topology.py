"""The topics the catalog implies: their names, partitions, replication and configs (pure).

Every component names the bus's topics through :class:`Topics`, so the naming lives in one
place::

    <prefix>.out.<AGENCY>       the agency's requests and responses (only it writes)
    <prefix>.in.<AGENCY>        inquiries routed to the agency (only it reads)
    <prefix>.replies.<AGENCY>   outcomes of the agency's inquiries (only it reads)
    <prefix>.desk.<AGENCY>      inquiries the agency's handlers deferred to a person (providers)
    <prefix>.audit              every terminal outcome and every late/duplicate/foreign record
    <prefix>.dlq                records no component could decode or process
    <prefix>.state              the stream workers' per-inquiry state (compacted changelog)
    <prefix>.compliance         the evaluation processor's windowed figures (compacted)
    <prefix>.catalog            the live catalog: the latest published snapshot (compacted)

:func:`desired_topics` turns a catalog and a :class:`TopologyConfig` into one
:class:`TopicSpec` per topic; :mod:`exchange._topology_plan` compares them with the cluster.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exchange._catalog_model import Catalog
from exchange._settings import ExchangeSettings

__all__ = [
    "CATALOG_CONFIG",
    "COMPLIANCE_CONFIG",
    "DESK_CONFIG",
    "STATE_CONFIG",
    "TopicKind",
    "TopicSpec",
    "Topics",
    "TopologyConfig",
    "compliance_configs",
    "desired_topics",
    "min_insync_replicas",
]

_DAY_MS = 86_400_000


class TopicKind(enum.StrEnum):
    """What a topic of the bus is for; the middle part of its name."""

    OUT = "out"
    IN = "in"
    REPLIES = "replies"
    DESK = "desk"
    AUDIT = "audit"
    DLQ = "dlq"
    STATE = "state"
    COMPLIANCE = "compliance"
    CATALOG = "catalog"

    @property
    def per_agency(self) -> bool:
        """Whether there is one topic of this kind per agency."""
        return self in _PER_AGENCY

    @property
    def copartitioned(self) -> bool:
        """Whether one worker reads partition p of it together with partition p of the others.

        Their partition counts must be equal: a record keyed by an inquiry id lands on the
        same partition number of each only while the counts match.
        """
        return self in _COPARTITIONED


_PER_AGENCY = frozenset({TopicKind.OUT, TopicKind.IN, TopicKind.REPLIES, TopicKind.DESK})
_COPARTITIONED = frozenset({TopicKind.OUT, TopicKind.IN, TopicKind.REPLIES, TopicKind.STATE})
# Agency codes: upper-case letters, digits and single hyphens (docs/catalog.md); never a dot,
# so the agency part of a topic name is unambiguous.
_AGENCY = r"[A-Z][A-Z0-9-]*"


@dataclass(frozen=True, slots=True)
class Topics:
    """The names of the bus's topics and consumer groups under one prefix.

    ``Topics(prefix).out("NOCR") == f"{prefix}.out.NOCR"``; build it with
    ``Topics.for_settings(settings)`` in components.
    """

    prefix: str

    @classmethod
    def for_settings(cls, settings: ExchangeSettings) -> Topics:
        """The names under ``EXCHANGE_TOPIC_PREFIX``."""
        return cls(settings.topic_prefix)

    def out(self, agency: str) -> str:
        """``<prefix>.out.<AGENCY>``: written by the agency only."""
        return f"{self.prefix}.out.{agency}"

    def in_(self, agency: str) -> str:
        """``<prefix>.in.<AGENCY>``: read by the agency only (``in`` is a Python keyword)."""
        return f"{self.prefix}.in.{agency}"

    def replies(self, agency: str) -> str:
        """``<prefix>.replies.<AGENCY>``: read by the agency only."""
        return f"{self.prefix}.replies.{agency}"

    def desk(self, agency: str) -> str:
        """``<prefix>.desk.<AGENCY>``: the provider's manual desk."""
        return f"{self.prefix}.desk.{agency}"

    def of(self, kind: TopicKind, agency: str | None = None) -> str:
        """The topic of ``kind`` (and ``agency`` for the per-agency kinds)."""
        if kind.per_agency != (agency is not None):
            raise ValueError(f"{kind} topics {'need' if kind.per_agency else 'take no'} agency")
        return f"{self.prefix}.{kind.value}" + (f".{agency}" if agency else "")

    @property
    def audit(self) -> str:
        """``<prefix>.audit``."""
        return f"{self.prefix}.audit"

    @property
    def dlq(self) -> str:
        """``<prefix>.dlq``."""
        return f"{self.prefix}.dlq"

    @property
    def state(self) -> str:
        """``<prefix>.state``: the stream workers' changelog."""
        return f"{self.prefix}.state"

    @property
    def compliance(self) -> str:
        """``<prefix>.compliance``."""
        return f"{self.prefix}.compliance"

    @property
    def catalog(self) -> str:
        """``<prefix>.catalog``: the live catalog (exchange._catalog_topic)."""
        return f"{self.prefix}.catalog"

    @property
    def out_pattern(self) -> str:
        """A regex matching every ``out`` topic, for a consumer subscribing by pattern."""
        return rf"^{re.escape(self.prefix)}\.out\.{_AGENCY}$"

    @property
    def worker_group(self) -> str:
        """The stream workers' consumer group, also their transactional id prefix."""
        return f"{self.prefix}.workers"

    @property
    def evaluation_group(self) -> str:
        """The evaluation processor's faust app id (its group and changelog-topic prefix)."""
        return f"{self.prefix}.evaluation"

    @property
    def replay_transactional_id(self) -> str:
        """``exchange dlq replay``'s transactional id: concurrent replays fence each other."""
        return f"{self.prefix}.dlq-replay"

    def provider_group(self, agency: str) -> str:
        """The provider SDK's default consumer group for the agency's ``in`` topic."""
        return f"{self.prefix}.provider.{agency}"

    def requester_group(self, agency: str, name: str) -> str:
        """The consumer group of a durable reply reader ``name`` of the agency (its offsets)."""
        return f"{self.prefix}.requester.{agency}.{name}"

    def parse(self, topic: str) -> tuple[TopicKind, str | None] | None:
        """``(kind, agency)`` of one of the bus's topic names, or None for any other name."""
        head = f"{self.prefix}."
        if not topic.startswith(head):
            return None
        kind_text, _, agency = topic.removeprefix(head).partition(".")
        try:
            kind = TopicKind(kind_text)
        except ValueError:
            return None
        if kind.per_agency:
            return (kind, agency) if re.fullmatch(_AGENCY, agency) else None
        return None if agency else (kind, None)


#: The stream workers' changelog: one value per inquiry key. Hour-long segments let the
#: cleaner compact all but the last hour, so a restore reads little more than the live state.
STATE_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "compact", "segment.ms": "3600000"}
)
#: The manual desk (exchange._desk): one value per pending inquiry; tombstones linger a day.
DESK_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "compact", "delete.retention.ms": str(_DAY_MS)}
)
#: The evaluation's figures (exchange._compliance_source): the latest value per window key;
#: an hour's compaction lag so a reader of a snapshot never loses a value to a newer one.
COMPLIANCE_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}
)

#: The live catalog (exchange._catalog_topic): one key, the latest snapshot. Snapshots of a
#: national catalog (2,000 services with their schemas) run to megabytes: room for 16 MiB.
CATALOG_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "compact", "max.message.bytes": str(16 * 1024 * 1024)}
)


def min_insync_replicas(replication_factor: int) -> int:
    """Acknowledged writes survive one broker loss and writes go on with one broker down."""
    return max(1, replication_factor - 1)


@dataclass(frozen=True, slots=True)
class TopologyConfig:
    """The knobs of the topology, from the settings; retentions in milliseconds (-1: forever)."""

    prefix: str
    partitions: int = 6
    replication_factor: int = 1
    retention_ms: int = 7 * _DAY_MS
    audit_retention_ms: int = -1
    dlq_retention_ms: int = 30 * _DAY_MS
    compliance_retention_ms: int = 400 * _DAY_MS

    @classmethod
    def from_settings(cls, settings: ExchangeSettings) -> TopologyConfig:
        """``EXCHANGE_TOPIC_PREFIX``, ``_PARTITIONS``, ``_REPLICATION_FACTOR`` and retentions."""
        audit, compliance = settings.audit_retention, settings.compliance_retention
        return cls(
            prefix=settings.topic_prefix,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            retention_ms=round(settings.topic_retention * 1000),
            audit_retention_ms=-1 if audit is None else round(audit * 1000),
            dlq_retention_ms=round(settings.dlq_retention * 1000),
            compliance_retention_ms=-1 if compliance is None else round(compliance * 1000),
        )


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the bus wants it; ``configs`` are the topic-level configs it manages."""

    name: str
    kind: TopicKind
    agency: str | None
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


def desired_topics(catalog: Catalog, config: TopologyConfig) -> list[TopicSpec]:
    """Every topic the catalog implies, agencies in catalog order, then the bus-wide ones."""
    providers = {service.provider for service in catalog.services}
    specs: list[TopicSpec] = []
    for agency in catalog.agencies:
        kinds = [TopicKind.OUT, TopicKind.IN, TopicKind.REPLIES]
        if agency.code in providers:
            kinds.append(TopicKind.DESK)
        specs.extend(_spec(config, kind, agency.code) for kind in kinds)
    bus_wide = (
        TopicKind.AUDIT,
        TopicKind.DLQ,
        TopicKind.STATE,
        TopicKind.COMPLIANCE,
        TopicKind.CATALOG,
    )
    specs.extend(_spec(config, kind) for kind in bus_wide)
    return specs


def _spec(config: TopologyConfig, kind: TopicKind, agency: str | None = None) -> TopicSpec:
    # One partition for the compliance figures: one total order, so a flush's partials come
    # before its coverage records (exchange._compliance_topic); one for the catalog's one key.
    single = kind in (TopicKind.COMPLIANCE, TopicKind.CATALOG)
    partitions = 1 if single else config.partitions
    return TopicSpec(
        name=Topics(config.prefix).of(kind, agency),
        kind=kind,
        agency=agency,
        partitions=partitions,
        replication_factor=config.replication_factor,
        configs={
            **_kind_configs(kind, config),
            "min.insync.replicas": str(min_insync_replicas(config.replication_factor)),
        },
    )


def compliance_configs(retention_ms: int) -> Mapping[str, str]:
    """The compliance topic's configs: compacted, and with a retention (not -1) also deleted
    once a window's last value is that old (exchange._compliance_plan then reads the audit
    topic for windows that old)."""
    if retention_ms < 0:
        return COMPLIANCE_CONFIG
    return {
        **COMPLIANCE_CONFIG,
        "cleanup.policy": "compact,delete",
        "retention.ms": str(retention_ms),
    }


def _kind_configs(kind: TopicKind, config: TopologyConfig) -> Mapping[str, str]:
    if kind is TopicKind.COMPLIANCE:
        return compliance_configs(config.compliance_retention_ms)
    compacted = {
        TopicKind.STATE: STATE_CONFIG,
        TopicKind.DESK: DESK_CONFIG,
        TopicKind.CATALOG: CATALOG_CONFIG,
    }
    if kind in compacted:
        return compacted[kind]
    retention = {TopicKind.AUDIT: config.audit_retention_ms, TopicKind.DLQ: config.dlq_retention_ms}
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(retention.get(kind, config.retention_ms)),
    }
