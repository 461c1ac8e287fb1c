"""docs/getting-started.md: its python blocks run, in order, against the real broker."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sdk_bus import real_bus

from exchange import ExchangeSettings

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
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    """Settings of a bus with its topics and one real worker owning every partition."""
    async with real_bus(settings, AGENCIES) as configured:
        yield configured


async def test_getting_started_examples_run_and_print_what_the_page_says(
    bus: ExchangeSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The page's code, run as one script, prints the lines its 'It prints' block shows."""
    assert bus.kafka_bootstrap is not None
    monkeypatch.setenv("EXCHANGE_KAFKA_BOOTSTRAP", bus.kafka_bootstrap)
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", bus.topic_prefix)
    monkeypatch.setenv("EXCHANGE_STATE_DIR", str(bus.state_dir))
    monkeypatch.chdir(ROOT)  # the default catalog and schema folders are relative to the repo
    code = compile("\n\n".join(blocks("python")), str(PAGE), "exec")
    # The page calls asyncio.run(): it needs a thread without a running event loop.
    await asyncio.wait_for(asyncio.to_thread(exec, code, {"__name__": "getting_started"}), 120)
    printed = capsys.readouterr().out.splitlines()
    expected = blocks("text")[0].splitlines()
    assert [line for line in printed if line in expected] == expected
