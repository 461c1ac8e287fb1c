"""The plan: what to change on the cluster so its topics become the desired ones (pure).

:func:`plan_topology` compares the :class:`~exchange._topology.TopicSpec` list with what the
cluster reports (:class:`ActualTopic`) and says what to do:

- **create** a missing topic with its partitions, replication factor and configs;
- **add partitions** where a topic has fewer than wanted. Kafka can only add partitions, so
  a topic with more than wanted keeps them (a note says so). Adding partitions moves where
  the default partitioner puts a key: for the co-partitioned inquiry topics (``out``, ``in``,
  ``replies``, ``state``) an inquiry in flight during the change has its records on two
  different partition numbers, so each change carries a loud warning saying what to do.
  New co-partitioned topics are never planned with fewer partitions than the existing ones,
  whatever ``EXCHANGE_PARTITIONS`` says: all of them must stay equal;
- **alter configs** whose effective value differs from the wanted one.

Replication factors are reported, not changed (that is a partition reassignment), and
agency topics that the catalog no longer names are reported, never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from exchange._topology import TopicKind, Topics, TopicSpec

__all__ = [
    "Action",
    "ActualTopic",
    "AddPartitions",
    "AlterConfigs",
    "CreateTopic",
    "Plan",
    "plan_topology",
]

_REPARTITION_WARNINGS = {
    TopicKind.OUT: "inquiries in flight get their response on another partition than their "
    "state: the worker owning it drops the response as unknown and the inquiry times out",
    TopicKind.IN: "providers notice new partitions only at their next metadata refresh "
    "(metadata.max.age.ms, 5 minutes by default): restart them after the change, or "
    "inquiries routed to new partitions wait past their deadline",
    TopicKind.STATE: "the changelog must match the inquiry topics partition for partition; "
    "stop the workers, apply, and start them again",
    TopicKind.REPLIES: "running clients read the replies partitions they found at start: "
    "restart every client of the agency, or outcomes on the new partitions go unseen",
}


@dataclass(frozen=True, slots=True)
class ActualTopic:
    """A topic as the cluster reports it; ``configs`` holds the effective managed values."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateTopic:
    """Create ``spec.name`` as specified."""

    spec: TopicSpec

    @property
    def topic(self) -> str:
        """The topic to create."""
        return self.spec.name

    def describe(self, *, done: bool = False) -> str:
        """One line for people, as a step to take or, with ``done``, as a step taken."""
        s = self.spec
        plural = "" if s.partitions == 1 else "s"
        parts = [f"{s.partitions} partition{plural}", f"replication {s.replication_factor}"]
        parts += [" ".join(f"{k}={v}" for k, v in sorted(s.configs.items()))] if s.configs else []
        return f"{'created' if done else 'create'} {s.name}: {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json``."""
        s = self.spec
        return {
            "action": "create",
            "topic": s.name,
            "kind": s.kind.value,
            "agency": s.agency,
            "partitions": s.partitions,
            "replication_factor": s.replication_factor,
            "configs": dict(s.configs),
        }


@dataclass(frozen=True, slots=True)
class AddPartitions:
    """Grow ``topic`` from ``current`` to ``target`` partitions; ``warning`` says the risk."""

    topic: str
    kind: TopicKind
    current: int
    target: int
    warning: str | None = None

    def describe(self, *, done: bool = False) -> str:
        """One line for people, as a step to take or, with ``done``, as a step taken."""
        verb = "added" if done else "add"
        return f"{verb} partitions to {self.topic}: {self.current} -> {self.target}"

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json``."""
        return {
            "action": "add-partitions",
            "topic": self.topic,
            "kind": self.kind.value,
            "from": self.current,
            "to": self.target,
            "warning": self.warning,
        }


@dataclass(frozen=True, slots=True)
class AlterConfigs:
    """Set ``changes`` (key -> (effective value or None, wanted value)) on ``topic``."""

    topic: str
    changes: Mapping[str, tuple[str | None, str]]

    @property
    def wanted(self) -> dict[str, str]:
        """The values to set."""
        return {key: new for key, (_old, new) in self.changes.items()}

    def describe(self, *, done: bool = False) -> str:
        """One line for people, as a step to take or, with ``done``, as a step taken."""
        parts = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(self.changes.items()))
        return f"{'altered' if done else 'alter'} {self.topic}: {parts}"

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json``."""
        changes = {k: {"from": old, "to": new} for k, (old, new) in sorted(self.changes.items())}
        return {"action": "alter-configs", "topic": self.topic, "changes": changes}


Action = CreateTopic | AddPartitions | AlterConfigs


@dataclass(frozen=True, slots=True)
class Plan:
    """The actions, in order (creates, partitions, configs), and what people must know."""

    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not self.actions

    @property
    def repartitions(self) -> tuple[AddPartitions, ...]:
        """The partition increases that carry a warning (co-partitioned inquiry topics)."""
        return tuple(a for a in self.actions if isinstance(a, AddPartitions) and a.warning)

    def lines(self) -> list[str]:
        """The plan for people: one line per action, then warnings and notes."""
        out = [a.describe() for a in self.actions] or ["nothing to do"]
        out += [f"WARNING: {w}" for w in self.warnings]
        out += [f"note: {n}" for n in self.notes]
        return out

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json``."""
        return {
            "actions": [a.to_json() for a in self.actions],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def plan_topology(
    desired: Sequence[TopicSpec], actual: Mapping[str, ActualTopic], *, prefix: str
) -> Plan:
    """What to do so that ``actual`` (every topic under the prefix) matches ``desired``."""
    warnings: list[str] = []
    notes: list[str] = []
    specs = _keep_copartitioned_equal(desired, actual, warnings)
    creates: list[Action] = []
    growths: list[Action] = []
    alters: list[Action] = []
    for spec in specs:
        found = actual.get(spec.name)
        if found is None:
            creates.append(CreateTopic(spec))
            continue
        growths.extend(_partitions(spec, found, notes))
        alters.extend(_configs(spec, found))
        if found.replication_factor != spec.replication_factor:
            notes.append(
                f"{spec.name} has replication factor {found.replication_factor}, not "
                f"{spec.replication_factor}; change it with a partition reassignment "
                "(kafka-reassign-partitions.sh), not here"
            )
    growing = [a for a in growths if isinstance(a, AddPartitions) and a.warning]
    if growing:
        warnings.append(_repartition_warning(growing))
    notes.extend(_orphans(desired, actual, prefix))
    return Plan(tuple(creates + growths + alters), tuple(warnings), tuple(notes))


def _keep_copartitioned_equal(
    desired: Sequence[TopicSpec], actual: Mapping[str, ActualTopic], warnings: list[str]
) -> list[TopicSpec]:
    """Raise the wanted count of co-partitioned topics to the highest one on the cluster."""
    wanted = max((s.partitions for s in desired if s.kind.copartitioned), default=0)
    existing = [
        actual[s.name].partitions for s in desired if s.kind.copartitioned and s.name in actual
    ]
    highest = max(existing, default=0)
    if highest <= wanted:
        return list(desired)
    warnings.append(
        f"existing inquiry topics have {highest} partitions, more than the {wanted} configured: "
        f"every inquiry topic is planned with {highest} so that they stay co-partitioned; "
        f"set EXCHANGE_PARTITIONS={highest}"
    )
    return [replace(s, partitions=highest) if s.kind.copartitioned else s for s in desired]


def _partitions(spec: TopicSpec, found: ActualTopic, notes: list[str]) -> list[Action]:
    if found.partitions > spec.partitions:
        notes.append(
            f"{spec.name} keeps its {found.partitions} partitions ({spec.partitions} wanted): "
            "Kafka cannot remove partitions"
        )
    if found.partitions >= spec.partitions:
        return []
    warning = _REPARTITION_WARNINGS.get(spec.kind) if spec.kind.copartitioned else None
    return [AddPartitions(spec.name, spec.kind, found.partitions, spec.partitions, warning)]


def _configs(spec: TopicSpec, found: ActualTopic) -> list[Action]:
    changes = {
        key: (found.configs.get(key), value)
        for key, value in spec.configs.items()
        if found.configs.get(key) != value
    }
    return [AlterConfigs(spec.name, changes)] if changes else []


def _repartition_warning(growing: Iterable[AddPartitions]) -> str:
    kinds = sorted({a.kind for a in growing}, key=list(TopicKind).index)
    reasons = "; ".join(f"{kind.value}: {_REPARTITION_WARNINGS[kind]}" for kind in kinds)
    return (
        "adding partitions to inquiry topics moves where inquiry ids land, which breaks "
        "co-partitioning for inquiries in flight. Drain the bus first: stop requesters, wait "
        "past the longest service deadline, stop the workers, apply, restart workers, "
        f"providers and clients. ({reasons})"
    )


def _orphans(
    desired: Sequence[TopicSpec], actual: Mapping[str, ActualTopic], prefix: str
) -> list[str]:
    """Agency topics on the cluster that the catalog does not name: reported, never deleted."""
    wanted = {spec.name for spec in desired}
    topics = Topics(prefix)
    orphans = [
        name
        for name in sorted(actual)
        if name not in wanted and (parsed := topics.parse(name)) is not None and parsed[1]
    ]
    return [
        f"{name} is not implied by the catalog; left as is (delete it by hand once it is drained)"
        for name in orphans
    ]
