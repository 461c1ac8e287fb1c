"""``exchange bench --smoke`` against the real broker: the harness cannot silently break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.bench._plan import SMOKE_PLAN
from exchange.bench._scenario import SCENARIOS, is_available
from exchange.cli._app import app

pytestmark = pytest.mark.integration


def test_smoke_run_writes_results_for_every_scenario(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Every available scenario answers, the bus with its pending-memory figure; the JSON, its
    timestamped copy and the plot appear."""
    result = CliRunner().invoke(
        app, ["bench", "--smoke", "--bootstrap", kafka_bootstrap, "--out-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "latest.json").read_text())
    expected = [name for name in SCENARIOS if is_available(name)]
    assert list(doc["scenarios"]) == expected
    for name, res in doc["scenarios"].items():
        assert "error" not in res, (name, res)
        assert res["throughput_per_s"] > 0
        for rate in SMOKE_PLAN.loads:
            latency = res["latency_ms"][str(rate)]
            assert latency["incomplete"] == 0, (name, rate, latency)
            assert latency["p99"] >= latency["p50"] > 0
        assert {"requester", "provider"} <= set(res["processes"])
    assert {"cores", "memory_gb", "python", "kafka_version"} <= set(doc["machine"])
    assert "ratio_bus_to_relay" in doc
    assert "pending_100k_rss_mb" in doc
    if "bus" in doc["scenarios"]:
        bus = doc["scenarios"]["bus"]
        assert "worker" in bus["processes"]
        assert doc["ratio_bus_to_relay"] > 0
        pending = bus["extra"]["pending"]
        assert pending["count"] == SMOKE_PLAN.pending, pending
        assert pending["rss_mb"] >= pending["idle_rss_mb"] > 0
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert (tmp_path / "latest.png").is_file()
