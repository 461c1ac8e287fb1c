"""The engine's pure parts: partition state with undo log, co-partitioning assignor, partitioner,
output routing, and the worker's engine settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.partitioner import DefaultPartitioner

import agents
from agents import (
    CopartitionedAssignor,
    EngineConfig,
    OutputRecord,
    PartitionState,
    default_partition,
)
from agents._assignor import deal_partition_numbers
from agents._engine_txn import route as _route
from agents._worker import WorkerOptions, _engine_config
from exchange import ConfigError, ExchangeSettings
from exchange._topology import Topics


class Cluster:
    """Just enough cluster metadata for an assignor: partition ids per topic."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._counts.get(topic)
        return set(range(count)) if count else None


def _members(subscriptions: dict[str, Iterable[str]]) -> dict[str, ConsumerProtocolMemberMetadata]:
    return {m: CopartitionedAssignor.metadata(sorted(t)) for m, t in subscriptions.items()}


def _owned(assignment: Any) -> dict[str, set[int]]:
    return {topic: set(partitions) for topic, partitions in assignment.assignment}


def test_exports_are_exactly_the_public_api() -> None:
    """The package exports the engine's API and nothing else."""
    assert sorted(agents.__all__) == sorted(
        [
            "BytesCodec",
            "CopartitionedAssignor",
            "Engine",
            "EngineConfig",
            "EngineStats",
            "InputRecord",
            "OutputRecord",
            "PartitionState",
            "Processor",
            "StateCodec",
            "default_partition",
        ]
    )
    assert all(hasattr(agents, name) for name in agents.__all__)


def test_state_changes_list_each_touched_key_once_with_its_latest_value() -> None:
    """Writes and deletes since the last commit become one changelog entry per key."""
    state: PartitionState[bytes] = PartitionState(3, {"a": b"1", "b": b"2"})
    state["a"] = b"10"
    state["a"] = b"11"
    del state["b"]
    state["c"] = b"3"
    assert dict(state.changes()) == {"a": b"11", "b": None, "c": b"3"}
    assert state.dirty


def test_state_key_created_and_deleted_in_one_batch_writes_nothing() -> None:
    """A key born and removed between two commits leaves no tombstone behind."""
    state: PartitionState[bytes] = PartitionState(0)
    state["tmp"] = b"x"
    del state["tmp"]
    assert state.changes() == []


def test_state_rollback_restores_the_last_committed_map() -> None:
    """Rollback undoes writes, deletes and new keys since the last commit."""
    state: PartitionState[bytes] = PartitionState(0, {"a": b"1", "b": b"2"})
    state["a"] = b"9"
    state.commit()
    state["a"] = b"10"
    del state["b"]
    state["c"] = b"3"
    state.rollback()
    assert dict(state) == {"a": b"9", "b": b"2"}
    assert not state.dirty


def test_deal_partition_numbers_gives_contiguous_ranges_extra_to_the_first() -> None:
    """Five numbers over two members: the first (in sorted order) gets three."""
    assert deal_partition_numbers(["m-b", "m-a"], 5) == {"m-a": [0, 1, 2], "m-b": [3, 4]}
    assert deal_partition_numbers([], 4) == {}


def test_assignor_gives_each_member_the_same_numbers_of_every_topic() -> None:
    """Partition p of every subscribed topic goes to one member (co-partitioning)."""
    topics = {"out.TAX": 6, "out.NOCR": 6, "out.POLICE": 6}
    members = _members({f"member-{i}": topics for i in range(3)})
    result = CopartitionedAssignor.assign(Cluster(topics), members)
    numbers = []
    for assignment in result.values():
        owned = _owned(assignment)
        assert set(owned) == set(topics)
        assert len({frozenset(parts) for parts in owned.values()}) == 1
        numbers.append(next(iter(owned.values())))
    assert sorted(n for parts in numbers for n in parts) == list(range(6))


def test_assignor_leaves_a_partition_unassigned_rather_than_split_it() -> None:
    """A member that does not subscribe to a new topic yet never gets its partitions elsewhere."""
    counts = {"out.A": 4, "out.NEW": 4}
    members = _members({"m1": ["out.A", "out.NEW"], "m2": ["out.A"]})
    result = CopartitionedAssignor.assign(Cluster(counts), members)
    assert _owned(result["m1"]) == {"out.A": {0, 1}, "out.NEW": {0, 1}}
    assert _owned(result["m2"]) == {"out.A": {2, 3}}


def test_default_partition_matches_the_producers_default_partitioner() -> None:
    """The engine places a keyed output where aiokafka's (and Java's) partitioner would."""
    partitions = list(range(12))
    for index in range(200):
        key = f"inquiry-{index}".encode()
        assert default_partition(key, 12) == DefaultPartitioner()(key, partitions, partitions)
    assert 0 <= default_partition(None, 12) < 12


def test_config_needs_exactly_one_of_topics_and_pattern() -> None:
    """A config names its inputs by a topic list or by a pattern, never both or neither."""
    with pytest.raises(ConfigError):
        EngineConfig(bootstrap_servers="x", application_id="a", changelog_topic="c")
    with pytest.raises(ConfigError):
        EngineConfig(
            bootstrap_servers="x",
            application_id="a",
            changelog_topic="c",
            topics=("t",),
            topic_pattern="t.*",
        )


class Producer:
    """Just enough producer metadata for routing: partition ids of the topics it knows."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._counts[topic]))  # KeyError: a metadata lookup not expected


async def test_routing_looks_up_only_topics_with_an_output_to_place() -> None:
    """Outputs with a partition go there with no metadata lookup; the rest by key hash."""
    outputs = [
        OutputRecord("placed", b"k", b"v", (), 1),
        OutputRecord("hashed", b"k", b"w", (), None),
    ]
    rows = await _route(Producer({"hashed": 3}), outputs)
    assert rows == {
        ("placed", 1): [(b"k", b"v", [])],
        ("hashed", default_partition(b"k", 3)): [(b"k", b"w", [])],
    }


def test_the_workers_tick_comes_from_the_settings() -> None:
    """EXCHANGE_WORKER_TICK_INTERVAL sets how often the engine ticks."""
    settings = ExchangeSettings(worker_tick_interval=0.25, kafka_bootstrap="127.0.0.1:1")
    config = _engine_config("127.0.0.1:1", settings, Topics("t"), WorkerOptions())
    assert config.tick_interval == 0.25
