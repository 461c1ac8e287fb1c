"""The bus scenario's pieces that need no broker: settings, processes, the provider's table."""

from __future__ import annotations

import dataclasses
import datetime as dt

from exchange._answer import AnswerStatus
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache, with_defaults
from exchange.bench._bus import PAYLOAD, SCENARIO, TWO_WORKERS
from exchange.bench._bus_env import CATALOG, SCHEMAS, bus_settings
from exchange.bench._bus_provider import SERVICE, verdict
from exchange.bench._plan import SMOKE_PLAN, LoadPlan
from exchange.bench._rawkafka import FETCH_MAX_WAIT_MS
from exchange.bench._scenario import ScenarioEnv, load_scenario

ENV = ScenarioEnv("127.0.0.1:9092", "bench-bus-0001", partitions=4)


def test_bus_is_registered_and_loads() -> None:
    """``bus`` loads by name; the two-worker variant has a name of its own."""
    assert load_scenario("bus") is SCENARIO
    assert load_scenario("exchange.bench._bus:TWO_WORKERS").name == "bus-2w"


def test_every_process_uses_the_runs_own_prefix_and_the_demo_catalog() -> None:
    """Settings put every topic and group under the run id, with the references' fetch wait."""
    settings = bus_settings(ENV)
    assert settings.topic_prefix == ENV.run_id
    assert settings.partitions == ENV.partitions
    assert settings.fetch_max_wait == FETCH_MAX_WAIT_MS / 1000
    assert (CATALOG / "services.yaml").is_file()
    assert (SCHEMAS / "envelope").is_dir()


def test_workers_start_before_the_provider() -> None:
    """One ``exchange worker`` process per worker, then the provider, each with its role."""
    roles = [spec.role for spec in TWO_WORKERS.processes(ENV)]
    assert roles == ["worker-1", "worker-2", "provider"]
    worker = SCENARIO.processes(ENV)[0]
    assert worker.role == "worker"
    assert worker.argv[1:3] == ("-m", "exchange.bench._bus_worker")
    assert worker.env["EXCHANGE_TOPIC_PREFIX"] == ENV.run_id


def test_the_provider_answers_from_its_table_within_the_schema() -> None:
    """The benchmark's request is FOUND with a response that fits the service's schema;
    an unknown person is NOT_FOUND."""
    answer = verdict(PAYLOAD)
    assert answer.status is AnswerStatus.FOUND
    assert answer.payload is not None
    catalog = load_catalog(CATALOG, SCHEMAS)
    codec = Codec(SchemaStore.from_directory(SCHEMAS))
    schemas = ServiceCache(catalog, codec).get(SERVICE)
    assert codec.encode(schemas.response, with_defaults(schemas.response_defaults, answer.payload))
    stranger = {**PAYLOAD, "national_id": "9999999999", "birth_date": dt.date(2000, 1, 1)}
    assert verdict(stranger).status is AnswerStatus.NOT_FOUND


def test_smoke_plan_leaves_few_inquiries_pending() -> None:
    """The smoke run measures memory with a few hundred pending inquiries, not 100,000."""
    assert 0 < SMOKE_PLAN.pending <= 1000
    assert LoadPlan().pending == 100_000
    assert LoadPlan.from_json(SMOKE_PLAN.to_json()) == SMOKE_PLAN


async def test_no_pending_measurement_when_the_plan_skips_it() -> None:
    """``--pending 0`` and the variants without the measurement add no figures."""
    assert await SCENARIO.extra_measurements(ENV, dataclasses.replace(SMOKE_PLAN, pending=0)) == {}
    assert await TWO_WORKERS.extra_measurements(ENV, SMOKE_PLAN) == {}
