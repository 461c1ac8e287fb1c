"""Entry point of the benchmark's child processes: ``python -m exchange.bench._child``.

``serve MODULE:FUNCTION --env JSON`` runs ``async def FUNCTION(env, stop)`` until SIGTERM.

``request --scenario NAME --env JSON --plan JSON --out FILE`` opens the scenario's requester,
runs the load plan and writes its results to FILE. It tells the runner where it is with lines
on stdout: ``PHASE measure`` when warm-up is over, ``PHASE done`` once FILE is written; then it
waits for its stdin to close, so the runner can read its CPU time while it is still alive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from exchange.bench._plan import LoadPlan, run_plan
from exchange.bench._scenario import ScenarioEnv, load_scenario, resolve

Served = Callable[[ScenarioEnv, asyncio.Event], Awaitable[None]]

MEASURE = "PHASE measure"
DONE = "PHASE done"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _exit_with_parent() -> None:
    """SIGTERM ourselves once the runner is gone, so no child outlives a killed run."""
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 - nothing signals a parent's death portably
        await asyncio.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


async def _serve(target: str, env: ScenarioEnv) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphan_guard = asyncio.create_task(_exit_with_parent())
    try:
        await cast("Served", resolve(target))(env, stop)
    finally:
        orphan_guard.cancel()


async def _request(name: str, env: ScenarioEnv, plan: LoadPlan, out: Path) -> None:
    orphan_guard = asyncio.create_task(_exit_with_parent())  # default SIGTERM: exit at once
    scenario = load_scenario(name)
    async with scenario.requester(env) as requester:
        result = await run_plan(requester, plan, lambda: _say(MEASURE))
        await asyncio.to_thread(out.write_text, json.dumps(result))
        _say(DONE)
        await asyncio.to_thread(sys.stdin.read)
    orphan_guard.cancel()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the child."""
    parser = argparse.ArgumentParser(prog="python -m exchange.bench._child")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("target")
    serve.add_argument("--env", required=True)
    request = sub.add_parser("request")
    request.add_argument("--scenario", required=True)
    request.add_argument("--env", required=True)
    request.add_argument("--plan", required=True)
    request.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    env = ScenarioEnv.from_json(args.env)
    if args.command == "serve":
        asyncio.run(_serve(args.target, env))
    else:
        plan = LoadPlan.from_json(json.loads(args.plan))
        asyncio.run(_request(args.scenario, env, plan, args.out))


if __name__ == "__main__":
    main()
