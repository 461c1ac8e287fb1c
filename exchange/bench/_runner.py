"""Runs scenarios: starts their processes, drives the requester, measures, cleans up.

One scenario at a time, so the scenarios never share the machine's two cores with each other;
the broker is the same for all of them, which is what makes their figures comparable.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchange._errors import BenchmarkError, ExchangeError
from exchange.bench._child import DONE, MEASURE
from exchange.bench._machine import load_average, machine_info
from exchange.bench._plan import LoadPlan
from exchange.bench._procstats import ProcessMeter, ProcessUsage
from exchange.bench._report import ratio_bus_to_relay
from exchange.bench._scenario import ProcessSpec, ScenarioEnv, load_scenario

_SAMPLE_S = 0.25
_STOP_S = 10.0
_STARTUP_ALLOWANCE_S = 120.0

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """One benchmark run."""

    bootstrap: str
    scenarios: tuple[str, ...]
    plan: LoadPlan
    partitions: int = 6
    payload_bytes: int = 300
    kafka_version: str | None = None
    #: The broker's process, when it runs on this machine: its CPU is measured as ``broker``.
    broker_pid: int | None = None


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process
    stderr: Path

    def tail(self, lines: int = 15) -> str:
        """The end of the process's stderr, for error messages."""
        with suppress(OSError):
            return "\n".join(self.stderr.read_text(errors="replace").splitlines()[-lines:])
        return ""


async def _start(spec: ProcessSpec, workdir: Path, *, piped: bool = False) -> _Child:
    stderr = workdir / f"{spec.role}.stderr"
    pipe = asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, stdin=pipe, stdout=pipe, stderr=err, env={**os.environ, **spec.env}
        )
    return _Child(spec, proc, stderr)


async def _stop(child: _Child) -> None:
    if child.proc.returncode is not None:
        return
    with suppress(ProcessLookupError):
        child.proc.terminate()
    try:
        await asyncio.wait_for(child.proc.wait(), _STOP_S)
    except TimeoutError:
        with suppress(ProcessLookupError):
            child.proc.kill()
        await child.proc.wait()


async def _watch(meter: ProcessMeter, services: Sequence[_Child]) -> None:
    """Sample usage; fail as soon as a service process dies under the requester."""
    while True:
        meter.sample()
        for child in services:
            if child.proc.returncode is not None:
                raise BenchmarkError(
                    f"{child.spec.role} exited with code {child.proc.returncode}:\n{child.tail()}"
                )
        await asyncio.sleep(_SAMPLE_S)


async def _drive(requester: _Child, meter: ProcessMeter) -> tuple[list[ProcessUsage], float]:
    """Follow the requester's phase lines; close the CPU window when it is done."""
    assert requester.proc.stdout is not None
    assert requester.proc.stdin is not None
    marked_at = time.monotonic()
    while line := await requester.proc.stdout.readline():
        text = line.decode().strip()
        if text == MEASURE:
            meter.mark()
            marked_at = time.monotonic()
        elif text == DONE:
            usage, measured_s = meter.finish(), time.monotonic() - marked_at
            requester.proc.stdin.close()
            await requester.proc.wait()
            return usage, measured_s
    await requester.proc.wait()
    raise BenchmarkError(
        f"requester exited with code {requester.proc.returncode}:\n{requester.tail()}"
    )


def _requester_spec(name: str, env: ScenarioEnv, plan: LoadPlan, out: Path) -> ProcessSpec:
    argv = (
        sys.executable, "-m", "exchange.bench._child", "request", "--scenario", name,
        "--env", env.to_json(), "--plan", json.dumps(plan.to_json()), "--out", str(out),
    )  # fmt: skip
    return ProcessSpec(role="requester", argv=argv)


async def _measure(
    name: str, env: ScenarioEnv, config: BenchConfig, workdir: Path
) -> dict[str, Any]:
    scenario, plan = load_scenario(name), config.plan
    meter = ProcessMeter()
    if config.broker_pid is not None:
        meter.track("broker", config.broker_pid)
    children: list[_Child] = []
    out = workdir / "result.json"
    try:
        for spec in scenario.processes(env):
            children.append(await _start(spec, workdir))
            meter.track(spec.role, children[-1].proc.pid)
        requester = await _start(_requester_spec(name, env, plan, out), workdir, piped=True)
        children.append(requester)
        meter.track("requester", requester.proc.pid)
        watch = asyncio.create_task(_watch(meter, children[:-1]))
        try:
            usage, measured_s = await asyncio.wait_for(
                _race(_drive(requester, meter), watch), _time_limit(plan)
            )
        except TimeoutError as exc:
            raise BenchmarkError(f"scenario {name} did not finish in time") from exc
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    finally:
        for child in reversed(children):
            await _stop(child)
    return _result(json.loads(out.read_text()), scenario.description, usage, measured_s)


def _time_limit(plan: LoadPlan) -> float:
    """Every phase, each drained to its limit, plus start-up: past this something is stuck."""
    drains = (len(plan.loads) + 2) * plan.drain_s
    return plan.expected_seconds() + drains + plan.ready_timeout_s + _STARTUP_ALLOWANCE_S


def _result(
    phases: dict[str, Any], description: str, usage: list[ProcessUsage], measured_s: float
) -> dict[str, Any]:
    """The requester's phase figures with the description and every process's usage."""
    processes = {u.role: {**u.to_json(), "cores": round(u.cpu_s / measured_s, 2)} for u in usage}
    return {
        **phases,
        "description": description,
        "measured_s": round(measured_s, 2),
        "processes": processes,
    }


async def _race(
    drive: Coroutine[Any, Any, tuple[list[ProcessUsage], float]], watch: asyncio.Task[None]
) -> tuple[list[ProcessUsage], float]:
    """The requester's result, unless the watcher fails first."""
    driving = asyncio.create_task(drive)
    try:
        await asyncio.wait({driving, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not driving.done():  # the watcher failed, or we are cancelled (time-out)
            driving.cancel()
            await asyncio.gather(driving, return_exceptions=True)
    if driving.cancelled():
        watch.result()  # raises the watcher's error
    return driving.result()


async def run_scenario(
    name: str, config: BenchConfig, *, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """Prepare, measure and clean up one scenario; its result as JSON values."""
    scenario = load_scenario(name)
    run_id = f"bench-{scenario.name}-{uuid.uuid4().hex[:8]}"
    env = ScenarioEnv(config.bootstrap, run_id, config.partitions, config.payload_bytes)
    progress(f"{name}: preparing ({run_id})")
    await scenario.prepare(env)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{run_id}-") as tmp:
            progress(f"{name}: running")
            result = await _measure(name, env, config, Path(tmp))
    finally:
        await scenario.cleanup(env)
    extra = getattr(scenario, "extra_measurements", None)
    if extra is not None:
        progress(f"{name}: extra measurements")
        result["extra"] = await extra(replace(env, run_id=f"{run_id}-extra"), config.plan)
    return result


async def run_bench(config: BenchConfig, *, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Run every scenario of ``config`` in turn; the whole results document.

    A scenario that fails is recorded with its ``error`` and the run goes on with the next.
    """
    started = datetime.now(UTC)
    load_before = load_average()
    scenarios: dict[str, Any] = {}
    for name in config.scenarios:
        try:
            scenarios[name] = await run_scenario(name, config, progress=progress)
        except ExchangeError as exc:
            progress(f"{name}: FAILED: {exc.message}")
            scenarios[name] = {"error": exc.message}
    finished = datetime.now(UTC)
    return {
        "schema_version": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": round((finished - started).total_seconds(), 1),
        "machine": {
            **machine_info(config.kafka_version),
            "load_avg_1m": {"before": load_before, "after": load_average()},
        },
        "config": {
            "partitions": config.partitions,
            "payload_bytes": config.payload_bytes,
            "plan": config.plan.to_json(),
        },
        "scenarios": scenarios,
        "ratio_bus_to_relay": ratio_bus_to_relay(scenarios),
        "pending_100k_rss_mb": _extra(scenarios, "bus", "pending_100k_rss_mb"),
    }


def _extra(scenarios: dict[str, Any], name: str, key: str) -> Any:
    """A figure from a scenario's extra measurements, or ``None`` when it has none."""
    return scenarios.get(name, {}).get("extra", {}).get(key)
