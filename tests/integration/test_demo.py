"""`exchange demo` on the real broker: the acceptance run, its agreement with the compliance
report, --keep-running with a clean Ctrl-C, and a run that starts and stops its own broker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("ANSWERED", "REJECTED", "FAILED", "TIMED_OUT")
#: Broker start (first run may fetch jars), children's start-up and the run on busy cores.
RUN_TIMEOUT = 240


def _env(settings: ExchangeSettings, *, bootstrap: bool = True) -> dict[str, str]:
    env = {
        **os.environ,
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_PARTITIONS": "3",
        "EXCHANGE_CATALOG_PATH": str(ROOT / "catalog" / "demo"),
        "EXCHANGE_SCHEMAS_PATH": str(ROOT / "schemas"),
    }
    env.pop("EXCHANGE_KAFKA_BOOTSTRAP", None)
    if bootstrap:
        assert settings.kafka_bootstrap is not None
        env["EXCHANGE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from exchange.cli import main; main()", *args]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


def _started_pids(stderr: str) -> list[int]:
    """The pids the demo said it started (children and, if any, the broker)."""
    return [int(pid) for pid in re.findall(r"\(pid (\d+)\)", stderr)]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _assert_agrees_with_report(env: dict[str, str], summary: dict[str, Any]) -> None:
    report = _run(env, "report", "compliance", "--json", "--since", "1d")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)["rows"]
    assert {row["service"] for row in rows} == set(summary["by_service"])
    for row in rows:
        figures, mine = row["figures"], summary["by_service"][row["service"]]
        assert row["agency"] == mine["provider"]
        assert figures["inquiries"] == mine["sent"]
        assert figures["answered"] == mine["ANSWERED"]
        assert figures["rejected"] == mine["REJECTED"]
        assert figures["failed"] == mine["FAILED"]
        assert figures["timed_out"] == mine["TIMED_OUT"]
    manual = sum(row["figures"]["manual"] for row in rows)
    assert manual == summary["answered_by"].get("MANUAL", 0)


def test_demo_of_2000_loses_nothing_and_shows_every_outcome(settings: ExchangeSettings) -> None:
    """2,000 inquiries: lost 0, duplicates 0, every kind present, audit and report agree."""
    env = _env(settings)
    result = _run(env, "demo", "--inquiries", "2000", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["sent"] == 2000
    assert summary["lost"] == 0
    assert summary["duplicates"] == 0
    assert all(summary["outcomes"][kind] > 0 for kind in KINDS), summary["outcomes"]
    assert sum(summary["outcomes"].values()) == 2000
    assert set(summary["rejected_reasons"]) >= {
        "NOT_ALLOWED", "PURPOSE_NOT_ALLOWED", "INVALID_PAYLOAD",
    }  # fmt: skip
    assert summary["failed_codes"].get("HANDLER_ERROR", 0) > 0
    assert summary["audit"]["agrees"] is True
    assert summary["audit"]["settled"] == summary["outcomes"]
    assert summary["dlq"] == summary["garbage_records"] > 0
    assert summary["throughput_per_s"] > 0
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert set(summary["metrics"]) == {"worker", "providers"}
    _assert_agrees_with_report(env, summary)
    assert all(_gone(pid) for pid in _started_pids(result.stderr))


def test_keep_running_leaves_the_bus_up_until_ctrl_c(settings: ExchangeSettings) -> None:
    """After the summary the bus still answers `exchange inquire`; SIGINT stops it all, exit 0."""
    env = _env(settings)
    demo = subprocess.Popen(
        _command("demo", "--inquiries", "150", "--json", "--keep-running"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:  # the JSON summary comes before the wait
            lines.append(line)
            if line == "}\n":
                break
        summary = json.loads("".join(lines))
        assert (summary["lost"], summary["duplicates"]) == (0, 0)
        assert "compliance" in summary["metrics"]
        asked = _run(
            env,
            "inquire",
            "post.address.lookup.v1",
            "--as", "POLICE/traffic",
            "--purpose", "traffic-enforcement",
            "--payload", '{"postal_code": "1234567890"}',
            "--json",
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["status"] == "NOT_FOUND"
        demo.send_signal(signal.SIGINT)
        _out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, err[-3000:]
    assert all(_gone(pid) for pid in _started_pids(err))


def test_demo_starts_and_stops_its_own_broker(settings: ExchangeSettings) -> None:
    """Without EXCHANGE_KAFKA_BOOTSTRAP and no broker running, the demo starts the local
    broker in its state dir, runs, and stops it again."""
    env = _env(settings, bootstrap=False)
    started = time.monotonic()
    result = _run(env, "demo", "--inquiries", "100", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["lost"], summary["duplicates"]) == (100, 0, 0)
    assert "starting the local Kafka broker" in result.stderr
    assert "local broker stopped" in result.stderr
    assert all(_gone(pid) for pid in _started_pids(result.stderr))
    status = _run(env, "broker", "status")
    assert status.returncode == 3, status.stdout  # stopped
    assert time.monotonic() - started < RUN_TIMEOUT
