"""Helpers for the `exchange topics` / `exchange dlq` tests: run the real command, read topics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange import ExchangeSettings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "catalog" / "demo"
SCHEMAS = ROOT / "schemas"
EXCHANGE = Path(sys.executable).with_name("exchange")


@dataclass(frozen=True)
class Result:
    """Exit code and output of one command."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Stdout parsed as JSON."""
        return json.loads(self.out)


def cli_env(settings: ExchangeSettings, **extra: str) -> dict[str, str]:
    """The environment of a command talking to the test's broker under the test's prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    assert settings.kafka_bootstrap is not None
    env |= {
        "EXCHANGE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_CATALOG_PATH": str(DEMO),
        "EXCHANGE_SCHEMAS_PATH": str(SCHEMAS),
        "EXCHANGE_PARTITIONS": "2",
    }
    return env | extra


async def run(env: dict[str, str], *args: str, stdin: str = "") -> Result:
    """Run ``exchange *args`` and wait for it (bounded)."""
    proc = await asyncio.create_subprocess_exec(
        str(EXCHANGE),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=120)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def describe(settings: ExchangeSettings, names: list[str]) -> dict[str, dict[str, Any]]:
    """Partition count and topic-level overrides of each topic, read with a plain admin client."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = await admin.describe_topics(names)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    found: dict[str, dict[str, Any]] = {
        t["topic"]: {"partitions": len(t["partitions"])} for t in topics if t["partitions"]
    }
    for response in responses:
        for item in response.to_object()["resources"]:
            overrides = {
                e["config_names"]: e["config_value"]
                for e in item["config_entries"]
                if e["config_source"] == 1  # DYNAMIC_TOPIC_CONFIG: set on the topic itself
            }
            if item["resource_name"] in found:
                found[item["resource_name"]]["configs"] = overrides
    return found


async def set_overrides(settings: ExchangeSettings, topic: str, configs: dict[str, str]) -> None:
    """Replace a topic's overrides by hand, as an operator with kafka-configs.sh would."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()
