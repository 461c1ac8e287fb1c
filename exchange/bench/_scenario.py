"""What a benchmark scenario is, and where the runner finds each one.

A scenario is a set of processes that answer inquiries (a provider, a relay, the bus's workers
…) plus a requester, run in a process of its own, that the load generator drives. Every process
is a separate OS process so that its CPU and memory can be read on its own.

The runner, for each scenario::

    prepare(env)            in the runner: create topics, write config files
    processes(env)          start each ProcessSpec as a child process (measured)
    requester(env)          in a fresh child process: ``async with scenario.requester(env) as r``
                            then the load plan calls ``await r.ask()`` many times
    cleanup(env)            in the runner: delete topics (best effort)

A new scenario is a module with a ``SCENARIO`` object satisfying :class:`Scenario` and one line
in :data:`SCENARIOS` (or, unregistered, named by ``module:attribute`` wherever a scenario name
goes). Its own processes can be any command (``ProcessSpec.argv``); an ``async
def f(env, stop)`` of its module runs as one with :func:`python_process`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import Protocol, cast

from exchange._errors import BenchmarkError
from exchange.bench._loadgen import Requester

#: Scenario name -> ``module:attribute`` of its :class:`Scenario` object, in report order.
#: ``bus`` is filled in by the module that runs the real workers and client SDK.
SCENARIOS: dict[str, str] = {
    "direct": "exchange.bench._direct:SCENARIO",
    "relay": "exchange.bench._relay:SCENARIO",
    "bus": "exchange.bench._bus:SCENARIO",
}


@dataclass(frozen=True, slots=True)
class ScenarioEnv:
    """Everything a scenario's processes need to find each other, as plain JSON values."""

    bootstrap: str
    #: Unique per scenario run; prefix every topic and consumer group with it.
    run_id: str
    partitions: int = 6
    payload_bytes: int = 300

    def to_json(self) -> str:
        """One line of JSON, passed to child processes on their command line."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScenarioEnv:
        """The inverse of :meth:`to_json`."""
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """A process the runner starts before the requester and stops (SIGTERM) after it."""

    #: Unique within the scenario: ``provider``, ``relay``, ``worker-1`` … (the report's rows).
    role: str
    argv: tuple[str, ...]
    #: Added to the runner's environment.
    env: Mapping[str, str] = field(default_factory=dict)


class Scenario(Protocol):
    """One way of answering inquiries, measured by the same load plan as every other."""

    @property
    def name(self) -> str:
        """The scenario's key in :data:`SCENARIOS` and in the results."""

    @property
    def description(self) -> str:
        """One line for the report."""

    async def prepare(self, env: ScenarioEnv) -> None:
        """Create the topics and anything else the processes need; runs in the runner."""

    def processes(self, env: ScenarioEnv) -> list[ProcessSpec]:
        """The processes besides the requester, started in this order."""

    def requester(self, env: ScenarioEnv) -> AbstractAsyncContextManager[Requester]:
        """Open the requester; entered inside the requester's own process."""

    async def cleanup(self, env: ScenarioEnv) -> None:
        """Remove what :meth:`prepare` made (best effort); runs in the runner."""


def python_process(role: str, target: str, env: ScenarioEnv) -> ProcessSpec:
    """A child running ``async def target(env, stop)`` (``module:function``) until SIGTERM."""
    argv = (sys.executable, "-m", "exchange.bench._child", "serve", target, "--env", env.to_json())
    return ProcessSpec(role=role, argv=argv)


def resolve(target: str) -> object:
    """Import ``module:attribute``."""
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BenchmarkError(f"cannot load {target}: {exc}") from exc


def _target(name: str) -> str | None:
    """A registered name's ``module:attribute``; a ``module:attribute`` stands for itself."""
    return name if ":" in name else SCENARIOS.get(name)


def is_available(name: str) -> bool:
    """Whether the scenario's module exists in this installation."""
    target = _target(name)
    return target is not None and importlib.util.find_spec(target.partition(":")[0]) is not None


def load_scenario(name: str) -> Scenario:
    """The scenario registered under ``name``, or at ``name`` if it is ``module:attribute``."""
    target = _target(name)
    if target is None:
        raise BenchmarkError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if not is_available(name):
        raise BenchmarkError(f"scenario {name!r} is not available in this version")
    return cast("Scenario", resolve(target))  # the registry promises a Scenario
