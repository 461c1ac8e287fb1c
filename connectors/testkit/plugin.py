"""pytest fixtures for a connector project: ``pytest_plugins = ["connectors.testkit.plugin"]``.

- ``exchange_bootstrap`` (session): the Kafka cluster named by ``EXCHANGE_KAFKA_BOOTSTRAP``, or
  the project's local broker started in a temporary folder for the session (the Kafka jars
  are fetched once by ``exchange broker fetch``) and stopped at the end;
- ``exchange_catalog``: ``(catalog folder, schemas folder)``; from ``EXCHANGE_CATALOG_PATH``
  and ``EXCHANGE_SCHEMAS_PATH`` by default, override it in a ``conftest.py``;
- ``exchange_settings``: settings for that broker with a private topic prefix and state
  folder per test and two partitions per topic.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange._errors import LocalBrokerError
from exchange._local_broker import LocalBroker
from exchange._settings import ExchangeSettings

#: Start-up on busy cores plus a first jar download: generous, still bounded.
BROKER_START_TIMEOUT = 180.0


@pytest.fixture(scope="session")
def exchange_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's broker."""
    external = os.environ.get("EXCHANGE_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), tied_to_parent=True)
    try:
        running = broker.start(timeout=BROKER_START_TIMEOUT)
    except LocalBrokerError as exc:
        pytest.fail(f"the test broker did not start: {exc.message}\n{broker.log_tail(80)}")
    try:
        yield running.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def exchange_catalog() -> tuple[Path, Path]:
    """The catalog and schemas folders the bus runs with."""
    settings = ExchangeSettings()
    return settings.catalog_path.resolve(), settings.schemas_path.resolve()


@pytest.fixture
def exchange_settings(
    exchange_bootstrap: str, exchange_catalog: tuple[Path, Path], tmp_path: Path
) -> ExchangeSettings:
    """Settings for the session's broker, a private topic prefix and state folder."""
    catalog, schemas = exchange_catalog
    return ExchangeSettings(
        kafka_bootstrap=exchange_bootstrap,
        state_dir=tmp_path / "state",
        topic_prefix=f"t-{uuid.uuid4().hex[:12]}",
        partitions=2,
        catalog_path=catalog,
        schemas_path=schemas,
    )
