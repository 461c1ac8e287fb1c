"""The results files, the printed tables and the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from exchange.bench._report import print_report, ratio_bus_to_relay, write_results


def _latency(p50: float, p99: float, incomplete: int = 0) -> dict[str, Any]:
    return {"count": 10, "incomplete": incomplete, "p50": p50, "p95": p99, "p99": p99,
            "max": p99, "mean": p50, "sent": 10, "errors": 0, "achieved_per_s": 10.0}  # fmt: skip


def _doc() -> dict[str, Any]:
    scenario = {
        "throughput_per_s": 5000.0,
        "latency_ms": {"250": _latency(2.0, 5.0), "500": _latency(3.0, 9.0, incomplete=2)},
        "processes": {"requester": {"cpu_s": 3.2, "peak_rss_mb": 60.0, "cores": 0.4}},
    }
    return {
        "started_at": "2026-11-01T12:00:00+00:00",
        "wall_s": 42.0,
        "machine": {"cores": 2, "memory_gb": 23.5, "python": "3.11.7", "kafka_version": "4.4.0"},
        "config": {"plan": {"loads": [250, 500]}},
        "scenarios": {"direct": scenario, "relay": {"error": "relay exited with code 1"}},
        "ratio_bus_to_relay": None,
        "pending_100k_rss_mb": None,
    }


def test_ratio_needs_both_bus_and_relay() -> None:
    """The ratio is bus over relay throughput, and null until the bus is measured."""
    relay = {"throughput_per_s": 4000.0}
    assert ratio_bus_to_relay({"relay": relay}) is None
    assert ratio_bus_to_relay({"relay": relay, "bus": {"throughput_per_s": 3000.0}}) == 0.75
    assert ratio_bus_to_relay({"relay": relay, "bus": {"error": "crashed"}}) is None


def test_write_results_writes_latest_and_timestamped_copies(tmp_path: Path) -> None:
    """latest.json and <stamp>.json hold the same document; a PNG plot sits beside each."""
    written = write_results(_doc(), tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["20261101T120000Z.json", "20261101T120000Z.png", "latest.json", "latest.png"]
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest == json.loads((tmp_path / "20261101T120000Z.json").read_text())
    assert latest["scenarios"]["direct"]["latency_ms"]["500"]["p99"] == 9.0
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_shows_figures_losses_and_failures() -> None:
    """The table shows p50 / p99 per load, lost inquiries, and failed scenarios as failed."""
    console = Console(record=True, width=200)
    print_report(_doc(), console)
    text = console.export_text()
    assert "2.0 / 5.0" in text
    assert "(2 lost)" in text
    assert "failed" in text
    assert "n/a (no bus scenario)" in text
