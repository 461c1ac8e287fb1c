"""The engine's vocabulary: records in and out, the processor protocol, config and counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from agents._state_store import PartitionState
from exchange._errors import ConfigError

__all__ = ["EngineConfig", "EngineStats", "InputRecord", "OutputRecord", "Processor"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed record, as the processor sees it."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to produce; ``partition=None`` means the default partitioner by key."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


class Processor(Protocol[V]):
    """What the engine runs: plain synchronous callables, called one at a time.

    ``process`` and ``on_tick`` must not block; they read and write ``state`` and return the
    records to produce. A record the processor cannot handle is its own business (route it to a
    dead-letter topic as an output); an exception escaping them rolls the batch back and stops
    the engine with :class:`~exchange.ProcessorError`.
    """

    def on_assigned(self, state: PartitionState[V]) -> None:
        """Partition ``state.partition`` is now owned; ``state`` holds its restored keys."""
        ...

    def on_revoked(self, partition: int) -> None:
        """Partition ``partition`` is no longer owned; its state is gone."""
        ...

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[V]
    ) -> Iterable[OutputRecord]:
        """Turn a batch of one partition number's records into outputs, writing ``state``."""
        ...

    def on_tick(self, now_ms: int, state: PartitionState[V]) -> Iterable[OutputRecord]:
        """Wall-clock timer for one owned partition (fire deadlines, expire old keys)."""
        ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine connects and batches; durations in seconds."""

    bootstrap_servers: str
    application_id: str  # the consumer group; also the default transactional id prefix
    changelog_topic: str
    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None  # regex; new matching topics join on the next refresh
    transactional_id_prefix: str | None = None
    # Records fetched but not yet committed, over all partitions: beyond it the engine stops
    # fetching until a partition's transaction completes (each transaction takes all of its
    # partition's records buffered so far).
    batch_max_records: int = 1000
    # Records handed to the processor per call. The event loop serves the other partitions'
    # transactions between calls (each of their requests waits for a turn of the loop), so a
    # large batch does not hold every other partition's commit up while it is processed.
    process_chunk: int = 64
    # Least time between the starts of two transactions of one partition's records. Each
    # transaction costs the broker several milliseconds of CPU whatever its size; spacing
    # them lets a busy partition's records gather into larger ones (an idle partition's
    # first record does not wait). Kafka Streams' default under exactly-once is 0.1 s.
    commit_interval: float = 0.05
    poll_interval: float = 0.1  # longest wait for records before ticks and stop are checked
    # Longest a fetch waits at the broker. aiokafka keeps one fetch in flight per broker and
    # leaves out partitions that still hold buffered records, so records arriving on those
    # wait for the fetch in flight: its wait bounds the hop's added latency (default 0.5 s).
    fetch_max_wait: float = 0.1
    tick_interval: float = 1.0
    # Producer linger. A transaction hands its outputs over as whole record batches, so
    # lingering only delays the produce request every commit waits for.
    linger: float = 0.0
    max_batch_bytes: int = 512 * 1024  # per partition; a batch of outputs fits in one request
    transaction_timeout: float = 60.0
    session_timeout: float = 10.0
    topic_refresh_interval: float = 30.0
    restore_timeout: float = 120.0
    max_retries: int = 5  # failed transactions in a row before the engine gives up
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    client_options: Mapping[str, Any] = field(default_factory=dict)  # security, passed to all

    def __post_init__(self) -> None:
        if bool(self.topics) == bool(self.topic_pattern):
            raise ConfigError("give the engine either topics or topic_pattern, not both")
        if self.process_chunk < 1:
            raise ConfigError("process_chunk must be at least 1")

    @property
    def transactional_prefix(self) -> str:
        """The prefix of every partition's transactional id."""
        return self.transactional_id_prefix or self.application_id


@dataclass(slots=True)
class EngineStats:
    """Counters since start, for logs, metrics and benchmarks."""

    records_in: int = 0
    records_out: int = 0
    state_writes: int = 0
    transactions: int = 0
    aborts: int = 0
    restores: int = 0
