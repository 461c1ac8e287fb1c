"""Load plans, scenario environments and the scenario registry."""

from __future__ import annotations

import pytest

from exchange._errors import BenchmarkError
from exchange.bench._plan import SMOKE_PLAN, LoadPlan, parse_loads
from exchange.bench._scenario import (
    SCENARIOS,
    ScenarioEnv,
    is_available,
    load_scenario,
    python_process,
)
from exchange.cli._bench import _scenario_names


def test_parse_loads_sorts_and_deduplicates() -> None:
    """Loads are run ascending, each once."""
    assert parse_loads("1000, 250,500,250") == (250, 500, 1000)


@pytest.mark.parametrize("text", ["", "abc", "100,-5", "0"])
def test_parse_loads_rejects_nonsense(text: str) -> None:
    """Only positive integers are offered loads."""
    with pytest.raises(ValueError, match="offered loads"):
        parse_loads(text)


def test_plan_round_trips_through_json() -> None:
    """The plan reaches the requester's process intact."""
    plan = LoadPlan(loads=(10, 20), load_s=1.5, concurrency=7)
    assert LoadPlan.from_json(plan.to_json()) == plan


def test_smoke_plan_is_short() -> None:
    """The smoke plan stays within a few seconds per scenario when the system keeps up."""
    assert SMOKE_PLAN.expected_seconds() < 8


def test_env_round_trips_through_json() -> None:
    """The environment reaches every child process intact."""
    env = ScenarioEnv("127.0.0.1:9092", "bench-x-1", partitions=3, payload_bytes=120)
    assert ScenarioEnv.from_json(env.to_json()) == env


def test_python_process_runs_the_child_entry_point() -> None:
    """A Python helper process is the benchmark's child module serving the target."""
    env = ScenarioEnv("127.0.0.1:9092", "bench-x-1")
    spec = python_process("provider", "pkg.mod:fn", env)
    assert spec.role == "provider"
    assert spec.argv[1:5] == ("-m", "exchange.bench._child", "serve", "pkg.mod:fn")


def test_reference_scenarios_load_by_name() -> None:
    """direct and relay are registered and load with their own names."""
    assert [load_scenario(n).name for n in ("direct", "relay")] == ["direct", "relay"]


def test_unregistered_scenario_loads_by_target() -> None:
    """A ``module:attribute`` name loads a scenario that is not in the registry."""
    assert load_scenario("exchange.bench._echo:SCENARIO").name == "echo"


def test_unknown_scenario_is_a_benchmark_error() -> None:
    """A typo in a scenario name ends with a message listing the known ones."""
    with pytest.raises(BenchmarkError, match="known: direct, relay"):
        load_scenario("dirct")


def test_default_scenarios_are_the_available_ones() -> None:
    """By default the CLI runs every registered scenario whose module is installed."""
    names = _scenario_names(None)
    assert names[:2] == ("direct", "relay")
    assert set(names) == {n for n in SCENARIOS if is_available(n)}
    assert _scenario_names(["relay"]) == ("relay",)


def test_public_surface_is_exactly_all() -> None:
    """exchange.bench exports what a new scenario needs, and every name resolves."""
    import exchange.bench

    assert sorted(exchange.bench.__all__) == exchange.bench.__all__
    assert all(hasattr(exchange.bench, name) for name in exchange.bench.__all__)
    assert {"Scenario", "ScenarioEnv", "ProcessSpec", "Requester", "python_process"} <= set(
        exchange.bench.__all__
    )
