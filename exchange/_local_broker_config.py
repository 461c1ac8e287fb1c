"""The local broker's single-node KRaft configuration, as values and text (no I/O).

One process is both controller and broker (combined mode), on 127.0.0.1 only. Defaults that
assume three brokers are lowered to one; internal topics get few partitions so the broker
starts quickly; consumer groups form without the usual 3 s delay.

``auto.create.topics.enable=false``: the bus creates its topics on purpose with the same
partition count (co-partitioning); a mistyped topic name must fail loudly rather than create
a one-partition topic that silently breaks it. Tests create their topics explicitly.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The one node's id, as a properties value (also checked in ``meta.properties``).
NODE_ID = "1"
#: Partitions of ``__consumer_offsets`` and ``__transaction_state`` (Kafka's default: 50).
INTERNAL_PARTITIONS = 4


@dataclass(frozen=True)
class BrokerLayout:
    """What a formatted data dir was made with; kept next to it for later starts."""

    port: int
    controller_port: int
    cluster_id: str
    kafka_version: str

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"


def new_cluster_id() -> str:
    """22 characters of URL-safe base64 of 16 random bytes, as ``kafka-storage random-uuid``."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka's tools would read it as an option.
            return cluster_id


def render_config(
    layout: BrokerLayout, data_dir: Path, overrides: Mapping[str, str] | None = None
) -> str:
    """The ``server.properties`` text for ``layout`` with its data in ``data_dir``.

    ``overrides`` replace or add entries (the secured variant's listeners and authorizer).
    """
    controller = f"127.0.0.1:{layout.controller_port}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.bootstrap.servers": controller,
        "listeners": f"PLAINTEXT://{layout.bootstrap},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{layout.bootstrap},CONTROLLER://{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": str(INTERNAL_PARTITIONS),
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": str(INTERNAL_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = [f"{key}={value}" for key, value in {**settings, **(overrides or {})}.items()]
    header = "# Written by `exchange broker start`; rewritten on every start.\n"
    return header + "\n".join(lines) + "\n"


def parse_properties(text: str) -> dict[str, str]:
    """The ``key=value`` pairs of a Java properties file (enough for ``meta.properties``)."""
    pairs: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs
