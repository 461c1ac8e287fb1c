"""What the bus scenarios share: settings, topics and the worker process of one run.

Every process of a bus run (worker, provider, requester) builds the same
:class:`~exchange.ExchangeSettings` from the :class:`ScenarioEnv`: the run id is the topic
prefix, so the worker's consumer group, its changelog and every agency topic are the run's
own. The demo catalog and the repository's schemas are used (a checkout is what ``make bench``
runs from); security settings still come from the process's ``EXCHANGE_*`` environment.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

from exchange._admin import TopicAdmin, apply_plan, read_plan, settle
from exchange._catalog import load_catalog
from exchange._errors import BenchmarkError, ExchangeError
from exchange._settings import ExchangeSettings
from exchange._topology import TopicKind, TopicSpec, TopologyConfig, desired_topics
from exchange.bench._rawkafka import FETCH_MAX_WAIT_MS, delete_topics
from exchange.bench._scenario import ProcessSpec, ScenarioEnv

_ROOT = Path(__file__).resolve().parents[2]
CATALOG = _ROOT / "catalog" / "demo"
SCHEMAS = _ROOT / "schemas"


def bus_settings(env: ScenarioEnv) -> ExchangeSettings:
    """The settings of every process of the run: its own prefix, the demo catalog, and the
    references' consumer poll (``fetch_max_wait``), so the scenarios wait alike for records."""
    return ExchangeSettings(
        kafka_bootstrap=env.bootstrap,
        topic_prefix=env.run_id,
        partitions=env.partitions,
        catalog_path=CATALOG,
        schemas_path=SCHEMAS,
        fetch_max_wait=FETCH_MAX_WAIT_MS / 1000,
    )


def _specs(settings: ExchangeSettings, agencies: Collection[str]) -> list[TopicSpec]:
    """The topics ``exchange topics apply`` makes for ``agencies``, and the bus-wide ones
    the worker needs (the compliance figures are not part of the run)."""
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    return [
        spec
        for spec in desired_topics(catalog, TopologyConfig.from_settings(settings))
        if spec.agency in agencies or (spec.agency is None and spec.kind != TopicKind.COMPLIANCE)
    ]


async def apply_topics(env: ScenarioEnv, agencies: Collection[str]) -> None:
    """Create the run's topics through the same plan ``exchange topics apply`` carries out."""
    settings = bus_settings(env)
    desired = _specs(settings, agencies)
    async with TopicAdmin.for_settings(settings) as admin:
        await apply_plan(admin, await read_plan(admin, desired, settings.topic_prefix))
        remaining = await settle(admin, desired, settings.topic_prefix)
    if not remaining.empty:
        raise BenchmarkError(f"topics not ready: {'; '.join(remaining.lines())}")


async def remove_topics(env: ScenarioEnv, agencies: Collection[str]) -> None:
    """Delete the run's topics (best effort)."""
    try:
        names = [spec.name for spec in _specs(bus_settings(env), agencies)]
    except ExchangeError:
        return
    await delete_topics(env, names)


def settings_environment(env: ScenarioEnv) -> dict[str, str]:
    """:func:`bus_settings` as the ``EXCHANGE_*`` variables a command-line process reads."""
    return {
        "EXCHANGE_KAFKA_BOOTSTRAP": env.bootstrap,
        "EXCHANGE_TOPIC_PREFIX": env.run_id,
        "EXCHANGE_PARTITIONS": str(env.partitions),
        "EXCHANGE_CATALOG_PATH": str(CATALOG),
        "EXCHANGE_SCHEMAS_PATH": str(SCHEMAS),
        "EXCHANGE_FETCH_MAX_WAIT": str(FETCH_MAX_WAIT_MS / 1000),
        # Warnings only: the worker logs a line per partition move and nothing per inquiry.
        "EXCHANGE_LOG_LEVEL": "WARNING",
        "EXCHANGE_LOG_FORMAT": "json",
    }


def worker_process(env: ScenarioEnv, *, processes: int = 1, role: str = "worker") -> ProcessSpec:
    """``exchange worker --processes N`` for the run (see :mod:`exchange.bench._bus_worker`)."""
    argv = (sys.executable, "-m", "exchange.bench._bus_worker", "--processes", str(processes))
    return ProcessSpec(role=role, argv=argv, env=settings_environment(env))
