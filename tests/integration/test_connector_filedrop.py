"""The filedrop connector in a real temporary folder on the real bus (a real worker, a
simulated civil registry): CSV and XML batches, a SIGKILL mid-file, the folder going away."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import yaml
from requester_bus import UNKNOWN_PERSON, civil_registry, connector_process, running, until
from sdk_bus import real_bus

from connectors._breaker import CircuitState
from connectors._config import parse_config
from connectors.filedrop import FiledropConfig, FiledropSource
from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

HEADER = "national_id,birth_date,first_name,last_name,case_reference\n"


@pytest.fixture
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    async with real_bus(settings, ["TAX", "NOCR"]) as configured:
        yield configured


def raw_config(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "filedrop",
        "name": "tax-batch",
        "agency": "TAX",
        "subsystem": "registration",
        "folder": str(folder),
        "settle_seconds": 0.2,
        "poll_interval": 0.2,
        "retry": {"attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.3, "jitter": 0.05},
        "circuit": {"failure_threshold": 2, "probe_interval": 0.3, "max_probe_interval": 1.0},
        "batches": [
            {
                "pattern": "verify-*",
                "service": "nocr.person.verify.v1",
                "purpose": "tax-registration",
                "deadline": 25,
            }
        ],
        **extra,
    }


def source(folder: Path, **extra: Any) -> FiledropSource:
    config = parse_config(raw_config(folder, **extra), FiledropConfig)
    assert isinstance(config, FiledropConfig)
    return FiledropSource(config)


def rows(n: int, start: int = 1) -> str:
    return "".join(f"{i:010d},1990-03-21,Sara,Ahmadi,C-{i}\n" for i in range(start, start + n))


def drop(folder: Path, name: str, content: str) -> Path:
    """What the legacy system does: write under a temporary name, then rename."""
    part = folder / f"{name}.part"
    part.write_text(content, encoding="utf-8")
    part.rename(folder / name)
    return folder / name


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def journalled(folder: Path, name: str) -> int:
    journal = folder / f".{name}.journal"
    return max(0, len(journal.read_text().splitlines()) - 1) if journal.exists() else 0


async def test_a_csv_batch_gets_its_result_errors_and_done_files(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """30 good rows answered (one NOT_FOUND), 2 bad rows on their lines in .errors; the
    result and the marker appear; the provider saw each inquiry once."""
    content = HEADER + rows(15) + "x,not-a-date,A,B,C-bad1\n" + rows(14, start=16)
    content += f"{UNKNOWN_PERSON},1990-03-21,A,B,C-unknown\n" + "only,three,cells\n"
    started = time.monotonic()
    batch = drop(tmp_path, "verify-2026-01.csv", content)
    async with civil_registry(bus) as handled, running(source(tmp_path), bus):
        await until((tmp_path / f"{batch.name}.done").exists, 60, "done marker")
    elapsed = time.monotonic() - started
    result = read_csv(tmp_path / f"{batch.name}.result.csv")
    assert len(result) == 30
    assert [r["line"] for r in result] == sorted((r["line"] for r in result), key=int)
    statuses = {(r["kind"], r["status"]) for r in result if r["case_reference"] != "C-unknown"}
    assert statuses == {("ANSWERED", "FOUND")}
    unknown = next(r for r in result if r["case_reference"] == "C-unknown")
    assert (unknown["kind"], unknown["status"]) == ("ANSWERED", "NOT_FOUND")
    errors = read_csv(tmp_path / f"{batch.name}.errors")
    assert [e["line"] for e in errors] == ["17", "33"]
    marker = json.loads((tmp_path / f"{batch.name}.done").read_text())
    assert (marker["rows"], marker["inquiries"], marker["errors"]) == (32, 30, 2)
    assert sorted(handled.values()) == [1] * 30
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no journal, no tmp
    print({"rows": 30, "seconds": round(elapsed, 2)})


async def test_an_xml_batch_gets_an_xml_result(bus: ExchangeSettings, tmp_path: Path) -> None:
    """An XML drop is answered into <file>.result.xml, one <result> per <inquiry>."""
    items = "".join(
        f"<inquiry case_reference='X-{i}'><national_id>{i:010d}</national_id>"
        "<birth_date>1990-03-21</birth_date><first_name>Sara</first_name>"
        "<last_name>Ahmadi</last_name></inquiry>\n"
        for i in range(1, 4)
    )
    batch = drop(tmp_path, "verify-x.xml", f"<inquiries>\n{items}</inquiries>\n")
    async with civil_registry(bus), running(source(tmp_path), bus):
        await until((tmp_path / f"{batch.name}.done").exists, 60, "done marker")
    results = ET.parse(tmp_path / f"{batch.name}.result.xml").getroot().findall("result")
    assert [(r.get("line"), r.get("kind"), r.get("status")) for r in results] == [
        ("2", "ANSWERED", "FOUND"),
        ("3", "ANSWERED", "FOUND"),
        ("4", "ANSWERED", "FOUND"),
    ]
    assert results[0].findtext("payload/national_id") == "0000000001"


async def test_a_kill_mid_file_sends_nothing_twice_and_the_restart_finishes(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """SIGKILL with some outcomes journalled, some inquiries in flight and some not sent:
    the next run finishes the file; the provider saw every inquiry exactly once."""
    drop_folder = tmp_path / "drop"
    drop_folder.mkdir()
    config_file = tmp_path / "filedrop.yaml"
    config_file.write_text(yaml.safe_dump(raw_config(drop_folder, concurrency=4)))
    batch = drop(drop_folder, "verify-big.csv", HEADER + rows(20))
    async with civil_registry(bus, delay=0.3) as handled:
        first = connector_process(bus, config_file)
        try:
            await until(lambda: journalled(drop_folder, batch.name) >= 6, 60, "half journalled")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        at_kill = journalled(drop_folder, batch.name)
        await asyncio.sleep(1.0)  # in-flight inquiries are answered while nobody listens
        second = connector_process(bus, config_file)
        try:
            await until((drop_folder / f"{batch.name}.done").exists, 60, "done")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    result = read_csv(drop_folder / f"{batch.name}.result.csv")
    assert [r["case_reference"] for r in result] == [f"C-{i}" for i in range(1, 21)]
    assert {(r["kind"], r["status"]) for r in result} == {("ANSWERED", "FOUND")}
    assert sorted(handled.values()) == [1] * 20
    assert 6 <= at_kill < 20
    print({"journalled_at_kill": at_kill})


async def test_the_folder_going_away_pauses_intake_and_loses_nothing(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """The share disappears while outcomes arrive: the circuit opens, outcomes wait; it comes
    back: every outcome is written and a file dropped afterwards is taken too."""
    drop_folder = tmp_path / "drop"
    away = tmp_path / "unmounted"
    drop_folder.mkdir()
    batch = drop(drop_folder, "verify-a.csv", HEADER + rows(8))
    filedrop = source(drop_folder, concurrency=8)
    async with civil_registry(bus, delay=1.0) as handled, running(filedrop, bus) as runtime:
        await until(lambda: len(handled) == 8, 30, "all sent")
        drop_folder.rename(away)
        try:
            opened = await until(
                lambda: runtime.guard.state is CircuitState.OPEN, 20, "circuit open"
            )
            await asyncio.sleep(1.0)
        finally:
            away.rename(drop_folder)
        await until((drop_folder / f"{batch.name}.done").exists, 60, "first done")
        later = drop(drop_folder, "verify-b.csv", HEADER + rows(3, start=50))
        await until((drop_folder / f"{later.name}.done").exists, 60, "second done")
    assert len(read_csv(drop_folder / f"{batch.name}.result.csv")) == 8
    assert len(read_csv(drop_folder / f"{later.name}.result.csv")) == 3
    assert sorted(handled.values()) == [1] * 11
    print({"circuit_open_after_s": round(opened, 2)})
