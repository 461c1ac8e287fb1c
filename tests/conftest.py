"""Fixtures shared by the whole suite.

Integration tests (``@pytest.mark.integration``) talk to one real Kafka broker per test
session: the project's local broker, started in a temporary folder the first time a test asks
for ``kafka_bootstrap`` and stopped when the session ends, or the existing cluster named by
``EXCHANGE_KAFKA_BOOTSTRAP``. Unit-only runs never start it. Each test gets its own topics,
consumer groups and topic prefix (``unique``, ``settings``), so tests never see each other's
records.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import pytest
import structlog
from hypothesis import settings as hypothesis_settings

from exchange import ExchangeSettings
from exchange._errors import BrokerError, LocalBrokerError
from exchange._kafka import check_reachable, client_options, resolve_bootstrap
from exchange._local_broker import LocalBroker

#: Start-up on two busy cores plus a first jar download: generous, still bounded.
BROKER_START_TIMEOUT = 180.0
TOPIC_READY_TIMEOUT = 30.0

Unique = Callable[[str], str]

# Hypothesis: no per-example deadline, since a loaded two-core machine makes any example slow
# now and then (the test's own timeout still bounds it); under CI the examples are derived from
# the test itself, so a run is repeatable and a failure shows up again in the next run; a
# failing example always prints the blob that replays it (@reproduce_failure).
hypothesis_settings.register_profile(
    "exchange",
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    print_blob=True,
)
hypothesis_settings.load_profile("exchange")


class CreateTopics(Protocol):
    """``await create_topics(*names, partitions=1, config=None)``: create, wait for leaders."""

    def __call__(
        self, *names: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> Awaitable[list[str]]: ...


@pytest.fixture(scope="session", autouse=True)
def _structlog_baseline() -> Iterator[dict[str, Any]]:
    """The structlog configuration the session starts with; loggers are never cached.

    A module's logger cached on first use keeps the configuration of that moment for the
    rest of the session, past any restore and out of reach of ``capture_logs``.
    """
    configure = structlog.configure

    def configure_uncached(**settings: Any) -> None:
        configure(**{**settings, "cache_logger_on_first_use": False})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(structlog, "configure", configure_uncached)
        yield structlog.get_config()


@pytest.fixture(autouse=True)
def _structlog_config_restored(_structlog_baseline: dict[str, Any]) -> Iterator[None]:
    """Each test ends with the session's structlog configuration restored.

    A command run in-process (typer's CliRunner), in a test or in a module-scoped fixture set
    up before it, configures logging onto its own stderr (closed afterwards) at its own level;
    left in place, later log calls raise "I/O operation on closed file" or are filtered out.
    """
    yield
    structlog.configure(**_structlog_baseline)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's real broker (started lazily, stopped at the end)."""
    external = os.environ.get("EXCHANGE_KAFKA_BOOTSTRAP")
    if external:
        _fail_unless_reachable(external)
        yield external
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), tied_to_parent=True)
    problem: str | None
    try:
        running = broker.start(timeout=BROKER_START_TIMEOUT)
    except LocalBrokerError as exc:
        problem = exc.message
    else:
        problem = None
    if problem is not None:
        pytest.fail(
            f"the test broker did not start: {problem}\n{broker.log_tail(80)}", pytrace=False
        )
    try:
        yield running.bootstrap
    finally:
        broker.stop()


def _fail_unless_reachable(bootstrap: str) -> None:
    """One clear failure, not a connection error in every test, when the cluster is down."""
    probe = check_reachable(bootstrap, 15.0, client_options(ExchangeSettings()))
    try:
        # A thread of its own: asyncio.run here would unset the loop pytest-asyncio prepared.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, probe).result()
    except BrokerError as exc:
        problem = exc.message
    else:
        return
    pytest.fail(f"EXCHANGE_KAFKA_BOOTSTRAP: {problem}", pytrace=False)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Unique:
    """``unique("topic")`` -> a fresh name (topic, group, id) that names the test."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]

    def make(kind: str) -> str:
        return f"{kind}-{slug}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path, unique: Unique) -> ExchangeSettings:
    """Settings for the session's broker, a private state dir and a private topic prefix."""
    return ExchangeSettings(
        kafka_bootstrap=kafka_bootstrap,
        state_dir=tmp_path / "state",
        topic_prefix=unique("t"),
    )


@pytest.fixture
def create_topics(settings: ExchangeSettings) -> CreateTopics:
    """Create topics on the session's broker and wait until every partition has a leader."""

    async def create(
        *names: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(
            bootstrap_servers=resolve_bootstrap(settings), **client_options(settings)
        )
        await admin.start()
        try:
            topics = [
                NewTopic(name, partitions, settings.replication_factor, topic_configs=config or {})
                for name in names
            ]
            _raise_topic_errors(await admin.create_topics(topics))
            await _wait_for_leaders(admin, names, partitions)
        finally:
            await admin.close()
        return list(names)

    return create


def _raise_topic_errors(response: Any) -> None:
    failed = [(name, code, msg) for name, code, msg in response.topic_errors if code != 0]
    if failed:
        raise AssertionError(f"could not create topics: {failed}")


async def _wait_for_leaders(admin: Any, names: tuple[str, ...], partitions: int) -> None:
    """Block until metadata shows a leader for every partition (no NotLeader retries later)."""
    async with asyncio.timeout(TOPIC_READY_TIMEOUT):
        while True:
            described = await admin.describe_topics(list(names))
            led = {
                topic["topic"]
                for topic in described
                if topic["error_code"] == 0
                and len(topic["partitions"]) == partitions
                and all(p["leader"] >= 0 for p in topic["partitions"])
            }
            if led == set(names):
                return
            await asyncio.sleep(0.1)
