"""Topic administration on a real cluster: the thin aiokafka I/O around the pure plan.

:class:`TopicAdmin` describes the bus's topics (partitions, replication, effective configs),
creates topics, adds partitions and sets configs; every aiokafka error, and every error code
in a response, becomes a :class:`~exchange.BrokerError`. :func:`read_plan`,
:func:`apply_plan` and :func:`settle` put it together with :func:`plan_topology`.

aiokafka 0.14 speaks only the legacy ``AlterConfigs`` request, which *replaces* a topic's
whole set of overrides: :meth:`TopicAdmin.set_configs` therefore reads the topic's current
overrides first and sends them back with the changed values, so settings an operator added
by hand survive (a concurrent change made between the read and the write would not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from exchange._errors import AuthorizationError, BrokerError
from exchange._kafka import client_options, connection_error, resolve_bootstrap
from exchange._settings import ExchangeSettings
from exchange._topology import TopicSpec
from exchange._topology_plan import (
    ActualTopic,
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Plan,
    plan_topology,
)

__all__ = ["TopicAdmin", "apply_plan", "read_plan", "settle"]

#: Topics per request: keeps requests and responses small on a cluster of 300 agencies.
_CHUNK = 200
#: ``config_source`` of a topic-level override (DescribeConfigs v1+).
_DYNAMIC_TOPIC_CONFIG = 1
#: Kafka error codes whose meaning the operator should read as "your principal lacks ACLs".
_AUTHORIZATION = {29, 31}

T = TypeVar("T")


class TopicAdmin:
    """An admin connection to the cluster; use as ``async with TopicAdmin.for_settings(s):``."""

    def __init__(self, bootstrap: str, options: Mapping[str, Any], *, timeout: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        self.timeout = timeout
        self._bootstrap, self._options = bootstrap, dict(options)
        self._client = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=round(timeout * 1000), **options
        )

    @classmethod
    def for_settings(cls, settings: ExchangeSettings) -> TopicAdmin:
        """Connected to the configured cluster with the configured security."""
        return cls(
            resolve_bootstrap(settings), client_options(settings), timeout=settings.request_timeout
        )

    async def __aenter__(self) -> Self:
        from aiokafka.errors import KafkaError

        try:
            await self._client.start()
        except KafkaError as exc:
            await self._client.close()
            what = "cannot reach Kafka"
            raise await connection_error(exc, what, self._bootstrap, self._options) from exc
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.close()

    async def topic_names(self, prefix: str) -> list[str]:
        """The names of every topic under ``<prefix>.``."""
        names = await self._call("list topics", self._client.list_topics())
        return sorted(name for name in names if name.startswith(f"{prefix}."))

    async def describe(self, names: Sequence[str], keys: Iterable[str]) -> dict[str, ActualTopic]:
        """Partitions, replication and the effective value of each config in ``keys``."""
        shapes = await self.partition_counts(names)
        configs: dict[str, dict[str, str]] = {}
        for chunk in _chunks(list(shapes)):
            configs.update(await self._configs(chunk, sorted(set(keys))))
        return {
            name: ActualTopic(name, count, replicas, configs.get(name, {}))
            for name, (count, replicas) in shapes.items()
        }

    async def partition_counts(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``name -> (partitions, replication factor)`` of those of ``names`` that exist."""
        found: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(list(names)):
            described = await self._call("describe topics", self._client.describe_topics(chunk))
            for topic in described:
                if topic["error_code"] in _AUTHORIZATION:  # not "missing": not ours to see
                    _raise_for(topic["error_code"], None, f"cannot describe {topic['topic']}")
                partitions = topic["partitions"]
                if partitions:
                    found[topic["topic"]] = (len(partitions), len(partitions[0]["replicas"]))
        return found

    async def leaderless(self, names: Sequence[str]) -> list[str]:
        """Those of ``names`` that are missing or have a partition without a leader."""
        waiting = set(names)
        for chunk in _chunks(list(names)):
            for topic in await self._call("describe topics", self._client.describe_topics(chunk)):
                parts = topic["partitions"]
                if parts and all(p["leader"] >= 0 for p in parts):
                    waiting.discard(topic["topic"])
        return sorted(waiting)

    async def create(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics; one that another process created meanwhile is fine."""
        from aiokafka.admin import NewTopic

        for chunk in _chunks(list(specs)):
            new = [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
                for s in chunk
            ]
            response = await self._call("create topics", self._client.create_topics(new))
            for name, code, message in response.topic_errors:
                if code != 36:  # TOPIC_ALREADY_EXISTS: a concurrent apply won the race
                    _raise_for(code, message, f"cannot create {name}")

    async def add_partitions(self, targets: Mapping[str, int]) -> None:
        """Grow each topic to its total partition count."""
        from aiokafka.admin import NewPartitions

        if targets:
            wanted = {name: NewPartitions(total) for name, total in targets.items()}
            await self._call("add partitions", self._client.create_partitions(wanted))

    async def set_configs(self, topic: str, wanted: Mapping[str, str]) -> None:
        """Set ``wanted`` on ``topic``, keeping its other topic-level overrides."""
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        overrides = await self._overrides(topic)
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {**overrides, **wanted})
        for response in await self._call("alter configs", self._client.alter_configs([resource])):
            for item in response.to_object()["resources"]:
                _raise_for(item["error_code"], item["error_message"], f"cannot alter {topic}")

    async def _configs(self, names: Sequence[str], keys: list[str]) -> dict[str, dict[str, str]]:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        wanted = dict.fromkeys(keys)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in names]
        responses = await self._call("describe configs", self._client.describe_configs(resources))
        configs: dict[str, dict[str, str]] = {}
        for item in _resources(responses):
            _raise_for(
                item["error_code"],
                item["error_message"],
                f"cannot describe {item['resource_name']}",
            )
            entries = item["config_entries"]
            configs[item["resource_name"]] = {e["config_names"]: e["config_value"] for e in entries}
        return configs

    async def _overrides(self, topic: str) -> dict[str, str]:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        responses = await self._call("describe configs", self._client.describe_configs([resource]))
        overrides = {}
        for item in _resources(responses):
            _raise_for(item["error_code"], item["error_message"], f"cannot describe {topic}")
            for entry in item["config_entries"]:
                if _is_override(entry):
                    overrides[entry["config_names"]] = entry["config_value"]
        return overrides

    async def _call(self, what: str, operation: Any) -> Any:
        from aiokafka.errors import KafkaError

        try:
            async with asyncio.timeout(self.timeout * 2):
                return await operation
        except KafkaError as exc:
            code = getattr(exc, "errno", None)
            hint = (
                " (the principal lacks ACLs: see exchange topics acls)"
                if code in _AUTHORIZATION
                else ""
            )
            if hint:
                raise AuthorizationError(f"cannot {what}: {exc}{hint}") from exc
            raise BrokerError(f"cannot {what}: {exc}{hint}", retriable=exc.retriable) from exc
        except TimeoutError as exc:
            raise BrokerError(f"cannot {what}: no answer within {self.timeout * 2:g} s") from exc


def _raise_for(code: int, message: str | None, what: str) -> None:
    """Raise :class:`BrokerError` for a non-zero Kafka error code in a response."""
    if code == 0:
        return
    from aiokafka.errors import for_code

    error = for_code(code)
    hint = " (the principal lacks ACLs: see exchange topics acls)" if code in _AUTHORIZATION else ""
    detail = f": {message}" if message else ""
    if hint:
        raise AuthorizationError(f"{what}: {error.message}{detail}{hint}")
    raise BrokerError(f"{what}: {error.message}{detail}{hint}", retriable=error.retriable)


def _is_override(entry: Mapping[str, Any]) -> bool:
    if "config_source" in entry:  # DescribeConfigs v1+
        return bool(entry["config_source"] == _DYNAMIC_TOPIC_CONFIG)
    return not entry.get("is_default", True)  # v0


def _resources(responses: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for response in responses:
        yield from response.to_object()["resources"]


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


async def read_plan(admin: TopicAdmin, desired: Sequence[TopicSpec], prefix: str) -> Plan:
    """Describe every topic under the prefix and plan the way to ``desired``."""
    keys = {key for spec in desired for key in spec.configs}
    actual = await admin.describe(await admin.topic_names(prefix), keys)
    return plan_topology(desired, actual, prefix=prefix)


async def apply_plan(admin: TopicAdmin, plan: Plan) -> None:
    """Carry out the plan's actions: creates, then partition growth, then configs."""
    await admin.create([a.spec for a in plan.actions if isinstance(a, CreateTopic)])
    growth = {a.topic: a.target for a in plan.actions if isinstance(a, AddPartitions)}
    await admin.add_partitions(growth)
    for action in plan.actions:
        if isinstance(action, AlterConfigs):
            await admin.set_configs(action.topic, action.wanted)


async def settle(
    admin: TopicAdmin, desired: Sequence[TopicSpec], prefix: str, *, within: float = 30.0
) -> Plan:
    """Re-plan until the cluster shows no difference (metadata spreads in the background).

    Returns the last plan: empty once every change is visible and every partition has a
    leader, or what is still different after ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        plan = await read_plan(admin, desired, prefix)
        waiting = [] if not plan.empty else await admin.leaderless([s.name for s in desired])
        if (plan.empty and not waiting) or loop.time() >= deadline:
            return plan
        await asyncio.sleep(0.2)
