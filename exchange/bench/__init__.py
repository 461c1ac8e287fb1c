"""Benchmarks: the bus measured side by side with the bare transport it runs on.

Run with ``exchange bench``; a new scenario implements :class:`Scenario` (see ``_scenario``).
"""

from exchange.bench._loadgen import Requester
from exchange.bench._plan import LoadPlan
from exchange.bench._runner import BenchConfig, run_bench
from exchange.bench._scenario import ProcessSpec, Scenario, ScenarioEnv, python_process

__all__ = [
    "BenchConfig",
    "LoadPlan",
    "ProcessSpec",
    "Requester",
    "Scenario",
    "ScenarioEnv",
    "python_process",
    "run_bench",
]
