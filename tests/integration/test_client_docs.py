"""docs/getting-started.md: its python blocks run, in order, against the real broker."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sdk_relay import PassThroughRelay

from exchange import ExchangeSettings

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
AGENCIES = ["TAX", "NOCR"]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    """The page's fenced blocks of ``language``, without those marked ``no-run``."""
    return [
        body
        for lang, info, body in FENCE.findall(PAGE.read_text(encoding="utf-8"))
        if lang == language and "no-run" not in info
    ]


@pytest.fixture
async def relay(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> AsyncIterator[PassThroughRelay]:
    p = settings.topic_prefix
    names = [f"{p}.{kind}.{a}" for a in AGENCIES for kind in ("out", "in", "replies")]
    await create_topics(*names, f"{p}.dlq", partitions=2)
    async with PassThroughRelay(settings, AGENCIES) as running:
        yield running


async def test_getting_started_examples_run_and_print_what_the_page_says(
    settings: ExchangeSettings,
    relay: PassThroughRelay,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The page's code, run as one script, prints the lines its 'It prints' block shows."""
    assert settings.kafka_bootstrap is not None
    monkeypatch.setenv("EXCHANGE_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("EXCHANGE_STATE_DIR", str(settings.state_dir))
    monkeypatch.chdir(ROOT)  # the default catalog and schema folders are relative to the repo
    code = compile("\n\n".join(blocks("python")), str(PAGE), "exec")
    # The page calls asyncio.run(); give it a thread of its own while the relay runs here.
    await asyncio.wait_for(asyncio.to_thread(exec, code, {"__name__": "getting_started"}), 120)
    printed = capsys.readouterr().out.splitlines()
    expected = blocks("text")[0].splitlines()
    assert [line for line in printed if line in expected] == expected
