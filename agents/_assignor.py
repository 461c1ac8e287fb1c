"""A partition assignor that keeps co-partitioned topics together.

The engine's unit of work is a *partition number*: partition *p* of every input topic holds the
same keys (every producer hashes the same key with the same partitioner onto topics with the
same partition count), and the state of those keys lives in partition *p* of the changelog.
So one group member must own partition *p* of **every** subscribed topic.

aiokafka's default, round-robin, deals partitions of different topics to different members.
Its range assignor keeps partition numbers together only while every member subscribes to the
same topic set; with pattern subscriptions a member that has not yet seen a new topic makes
range hand that topic's partitions out by a different split. This assignor first deals the
partition *numbers* (0 … max partition count - 1) over the members in range style, then gives
partition *p* of each topic to the owner of number *p*. When that owner does not (yet) subscribe
to the topic, the partition stays unassigned for this generation rather than landing on a
member without its state; the owner's subscription change triggers the next rebalance.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

__all__ = ["CopartitionedAssignor", "deal_partition_numbers"]

_log = logging.getLogger(__name__)


def deal_partition_numbers(members: Iterable[str], count: int) -> dict[str, list[int]]:
    """Split partition numbers ``0 … count-1`` over ``members`` in contiguous ranges.

    Members are sorted so that every leader computes the same split; the first
    ``count % len(members)`` members get one number more.
    """
    ordered = sorted(members)
    if not ordered:
        return {}
    share, extra = divmod(count, len(ordered))
    dealt: dict[str, list[int]] = {}
    start = 0
    for index, member in enumerate(ordered):
        length = share + (1 if index < extra else 0)
        dealt[member] = list(range(start, start + length))
        start += length
    return dealt


class CopartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka is untyped
    """Give partition *p* of every subscribed topic to the same group member."""

    name = "copartitioned"
    version = 0

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Compute each member's topic partitions (called on the group leader only)."""
        counts = _partition_counts(cluster, members)
        owners = {
            number: member
            for member, numbers in deal_partition_numbers(
                members, max(counts.values(), default=0)
            ).items()
            for number in numbers
        }
        plan: dict[str, dict[str, list[int]]] = defaultdict(dict)
        for topic, count in sorted(counts.items()):
            for number in range(count):
                owner = owners[number]
                if topic in members[owner].subscription:
                    plan[owner].setdefault(topic, []).append(number)
                else:
                    _log.warning("%s[%d] waits until its owner subscribes", topic, number)
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(plan[member].items()), b"")
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """Describe this member's subscription for the JoinGroup request."""
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Nothing to remember: the assignment is a pure function of the group."""


def _partition_counts(
    cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
) -> dict[str, int]:
    topics = {topic for metadata in members.values() for topic in metadata.subscription}
    counts: dict[str, int] = {}
    for topic in topics:
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            counts[topic] = max(partitions) + 1
        else:
            _log.warning("no partition metadata for topic %s", topic)
    return counts
