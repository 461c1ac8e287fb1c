"""The runner end to end on the in-memory echo scenario: real child processes, no Kafka."""

from __future__ import annotations

from exchange.bench._plan import LoadPlan
from exchange.bench._runner import BenchConfig, run_bench

PLAN = LoadPlan(
    loads=(50,), load_s=0.4, saturation_s=0.4, concurrency=4, warmup_s=0.1, drain_s=2.0,
    ready_timeout_s=10.0, settle_s=0.05,
)  # fmt: skip
ECHO = "exchange.bench._echo:SCENARIO"
CRASHING = "exchange.bench._echo:CRASHING"


async def test_runner_measures_every_process() -> None:
    """A run yields throughput, latency per load, and CPU/RSS for helper and requester."""
    doc = await run_bench(BenchConfig(bootstrap="unused:0", scenarios=(ECHO,), plan=PLAN))
    result = doc["scenarios"][ECHO]
    assert "error" not in result
    assert result["throughput_per_s"] > 100  # 4 in flight, 2 ms each: ~2,000/s at best
    assert result["latency_ms"]["50"]["count"] == 20
    assert result["latency_ms"]["50"]["p50"] >= 2.0
    assert set(result["processes"]) == {"helper", "requester"}
    assert result["processes"]["requester"]["peak_rss_mb"] > 5
    assert result["processes"]["requester"]["cpu_s"] > 0
    assert doc["machine"]["cores"] >= 1
    assert doc["ratio_bus_to_relay"] is None
    assert doc["pending_100k_rss_mb"] is None


async def test_runner_records_a_dead_process_and_goes_on() -> None:
    """A scenario whose helper dies is recorded with the reason; the next one still runs."""
    doc = await run_bench(BenchConfig(bootstrap="unused:0", scenarios=(CRASHING, ECHO), plan=PLAN))
    assert "helper exited with code 3" in doc["scenarios"][CRASHING]["error"]
    assert "error" not in doc["scenarios"][ECHO]
