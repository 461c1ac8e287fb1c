"""Against a port where no broker listens, every public SDK call raises BrokerError (no
aiokafka exception escapes) and leaves no Kafka client running."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exchange import (
    BrokerError,
    ExchangeClient,
    ExchangeSettings,
    Provider,
    answer_manually,
    list_deferred,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dead(tmp_path: Path) -> ExchangeSettings:
    """Settings pointing at a local port that was just free (nothing listens on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return ExchangeSettings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        catalog_path=ROOT / "catalog" / "demo",
        schemas_path=ROOT / "schemas",
        state_dir=tmp_path,
    )


async def _run_provider(settings: ExchangeSettings) -> None:
    await Provider(agency="NOCR", settings=settings).run()


async def _start_client(settings: ExchangeSettings) -> None:
    await ExchangeClient(agency="TAX", settings=settings).start()


async def _answer(settings: ExchangeSettings) -> None:
    await answer_manually(settings, "NOCR", "00000000-0000-0000-0000-000000000001", "NOT_FOUND")


async def _list(settings: ExchangeSettings) -> None:
    await list_deferred(settings, "NOCR")


@pytest.mark.parametrize("call", [_run_provider, _start_client, _answer, _list])
async def test_dead_broker_raises_broker_error(
    dead: ExchangeSettings, call: Callable[[ExchangeSettings], Awaitable[None]]
) -> None:
    """Provider.run, ExchangeClient.start, answer_manually and list_deferred: BrokerError."""
    before = asyncio.all_tasks()
    with pytest.raises(BrokerError):
        async with asyncio.timeout(60):
            await call(dead)
    await asyncio.sleep(0.1)  # stopped clients' own tasks finish their cancellation
    assert {task for task in asyncio.all_tasks() - before if not task.done()} == set()
