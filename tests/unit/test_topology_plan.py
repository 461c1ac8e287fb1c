"""The topology plan: create what is missing, grow partitions, fix configs; never shrink."""

from __future__ import annotations

from collections.abc import Sequence

from exchange._topology import TopicKind, Topics, TopicSpec
from exchange._topology_plan import (
    ActualTopic,
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    plan_topology,
)

P = "bus"
T = Topics(P)


def spec(kind: TopicKind, agency: str | None = None, *, partitions: int = 4) -> TopicSpec:
    configs = {"cleanup.policy": "delete", "retention.ms": "1000"}
    return TopicSpec(T.of(kind, agency), kind, agency, partitions, 1, configs)


def as_found(specs: Sequence[TopicSpec], **changes: int) -> dict[str, ActualTopic]:
    """The cluster holding exactly ``specs``; ``changes`` maps a topic's kind to other counts."""
    return {
        s.name: ActualTopic(s.name, changes.get(s.kind.value, s.partitions), 1, dict(s.configs))
        for s in specs
    }


DESIRED = [
    spec(TopicKind.OUT, "TAX"),
    spec(TopicKind.IN, "TAX"),
    spec(TopicKind.REPLIES, "TAX"),
    spec(TopicKind.STATE),
    spec(TopicKind.DLQ),
]


def test_empty_cluster_creates_every_topic_in_order() -> None:
    """Nothing on the cluster: one create per desired topic, in the desired order."""
    plan = plan_topology(DESIRED, {}, prefix=P)
    assert [a.spec for a in plan.actions if isinstance(a, CreateTopic)] == DESIRED
    assert len(plan.actions) == len(DESIRED)
    assert not plan.warnings


def test_cluster_as_desired_plans_nothing() -> None:
    """The same topics, partitions and configs: an empty plan that says so."""
    plan = plan_topology(DESIRED, as_found(DESIRED), prefix=P)
    assert plan.empty
    assert plan.lines() == ["nothing to do"]


def test_a_new_agency_adds_exactly_its_topics() -> None:
    """Adding an agency to the catalog plans creates of its topics only."""
    new = [spec(TopicKind.OUT, "POST"), spec(TopicKind.IN, "POST")]
    plan = plan_topology([*DESIRED, *new], as_found(DESIRED), prefix=P)
    assert [a.topic for a in plan.actions] == ["bus.out.POST", "bus.in.POST"]


def test_fewer_partitions_grows_them_with_a_loud_warning_for_inquiry_topics() -> None:
    """Growing co-partitioned topics is planned, flagged as a repartition, and explained."""
    plan = plan_topology(DESIRED, as_found(DESIRED, out=2, state=2), prefix=P)
    grown = [a for a in plan.actions if isinstance(a, AddPartitions)]
    assert [(a.topic, a.current, a.target) for a in grown] == [
        ("bus.out.TAX", 2, 4),
        ("bus.state", 2, 4),
    ]
    assert plan.repartitions == tuple(grown)
    assert len(plan.warnings) == 1
    assert "co-partitioning" in plan.warnings[0]
    assert "Drain the bus first" in plan.warnings[0]


def test_growing_the_dlq_carries_no_warning() -> None:
    """Topics read whole (dlq) grow without a repartition warning."""
    plan = plan_topology(DESIRED, as_found(DESIRED, dlq=1), prefix=P)
    assert [a.describe() for a in plan.actions] == ["add partitions to bus.dlq: 1 -> 4"]
    assert plan.repartitions == ()
    assert plan.warnings == ()


def test_more_partitions_than_wanted_are_kept_and_explained() -> None:
    """Kafka cannot shrink: a topic with more partitions is left, with a note."""
    plan = plan_topology(DESIRED, as_found(DESIRED, dlq=9), prefix=P)
    assert plan.empty
    assert plan.notes == (
        "bus.dlq keeps its 9 partitions (4 wanted): Kafka cannot remove partitions",
    )


def test_new_inquiry_topics_match_the_existing_higher_count() -> None:
    """If existing inquiry topics have more partitions than configured, new ones get as many."""
    existing = [s for s in DESIRED if s.kind is not TopicKind.REPLIES]
    found = as_found(existing, out=8, **{"in": 8}, state=8)
    plan = plan_topology(DESIRED, found, prefix=P)
    (create,) = [a for a in plan.actions if isinstance(a, CreateTopic)]
    assert (create.topic, create.spec.partitions) == ("bus.replies.TAX", 8)
    assert "set EXCHANGE_PARTITIONS=8" in plan.warnings[0]


def test_inquiry_topics_left_behind_grow_to_the_highest_count() -> None:
    """One inquiry topic with more partitions pulls the others up, never the other way."""
    plan = plan_topology(DESIRED, as_found(DESIRED, out=6), prefix=P)
    grown = {a.topic: a.target for a in plan.actions if isinstance(a, AddPartitions)}
    assert grown == {"bus.in.TAX": 6, "bus.replies.TAX": 6, "bus.state": 6}


def test_config_drift_is_altered_back_showing_the_old_value() -> None:
    """A differing or missing managed config becomes an alter from the effective value."""
    found = as_found(DESIRED)
    found["bus.audit"] = ActualTopic("bus.audit", 4, 1, {})
    found["bus.out.TAX"] = ActualTopic(
        "bus.out.TAX", 4, 1, {"cleanup.policy": "delete", "retention.ms": "5"}
    )
    desired = [*DESIRED, spec(TopicKind.AUDIT)]
    plan = plan_topology(desired, found, prefix=P)
    alters = {a.topic: dict(a.changes) for a in plan.actions if isinstance(a, AlterConfigs)}
    assert alters == {
        "bus.out.TAX": {"retention.ms": ("5", "1000")},
        "bus.audit": {"cleanup.policy": (None, "delete"), "retention.ms": (None, "1000")},
    }


def test_replication_factor_is_reported_not_changed() -> None:
    """A different replication factor needs a reassignment: a note, no action."""
    found = as_found(DESIRED)
    found["bus.dlq"] = ActualTopic("bus.dlq", 4, 3, dict(DESIRED[-1].configs))
    plan = plan_topology(DESIRED, found, prefix=P)
    assert plan.empty
    assert "bus.dlq has replication factor 3, not 1" in plan.notes[0]


def test_agency_topics_the_catalog_dropped_are_reported_never_deleted() -> None:
    """Orphaned agency topics get a note; unrelated topics under the prefix are ignored."""
    found = as_found(DESIRED)
    for name in ("bus.out.GONE", "bus.evaluation-hour-changelog", "bus.check.abc"):
        found[name] = ActualTopic(name, 1, 1, {})
    plan = plan_topology(DESIRED, found, prefix=P)
    assert plan.empty
    assert plan.notes == (
        "bus.out.GONE is not implied by the catalog; left as is (delete it by hand once it is "
        "drained)",
    )


def test_plan_as_json_lists_actions_warnings_and_notes() -> None:
    """--json carries every action with its details, the warnings and the notes."""
    found = as_found(DESIRED[1:], out=2)
    plan = plan_topology(DESIRED, found, prefix=P)
    data = plan.to_json()
    assert data["actions"][0] == {
        "action": "create",
        "topic": "bus.out.TAX",
        "kind": "out",
        "agency": "TAX",
        "partitions": 4,
        "replication_factor": 1,
        "configs": {"cleanup.policy": "delete", "retention.ms": "1000"},
    }
    assert data["warnings"] == []
    assert data["notes"] == []


def test_lines_read_as_steps_and_as_steps_taken() -> None:
    """Each action reads as a step to take, and with done=True as one taken."""
    grow = AddPartitions("bus.out.TAX", TopicKind.OUT, 2, 4)
    alter = AlterConfigs("bus.dlq", {"retention.ms": ("1", "2")})
    create = CreateTopic(TopicSpec("bus.compliance", TopicKind.COMPLIANCE, None, 1, 1, {}))
    assert grow.describe(done=True) == "added partitions to bus.out.TAX: 2 -> 4"
    assert alter.describe() == "alter bus.dlq: retention.ms 1 -> 2"
    assert create.describe(done=True) == "created bus.compliance: 1 partition, replication 1"
