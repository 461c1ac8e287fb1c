"""`exchange broker start|status|stop` runs a real broker of its own and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import psutil
import pytest

from exchange._kafka import check_reachable

pytestmark = pytest.mark.integration

EXCHANGE = Path(sys.executable).with_name("exchange")


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(EXCHANGE),
        "broker",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _create_topic(bootstrap: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def test_start_status_stop_and_restart_keeps_topics(tmp_path: Path) -> None:
    """start prints bootstrap=, status sees it, stop ends the JVM, a restart keeps the data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_STATE_DIR"] = str(tmp_path / "state")
    try:
        code, out, _ = await _cli(env, "start")
        assert code == 0
        match = re.fullmatch(r"bootstrap=(127\.0\.0\.1:\d+)\n", out)
        assert match, out
        bootstrap = match.group(1)
        code, out, _ = await _cli(env, "status")
        assert code == 0
        assert out.startswith(f"running bootstrap={bootstrap} pid=")
        pid_match = re.search(r"pid=(\d+)", out)
        assert pid_match, out
        pid = int(pid_match.group(1))
        assert (await check_reachable(bootstrap, timeout=10)).broker_count == 1
        await _create_topic(bootstrap, "kept-across-restarts")

        assert (await _cli(env, "start"))[1] == f"bootstrap={bootstrap}\n"  # idempotent
        assert (await _cli(env, "stop"))[:2] == (0, "stopped\n")
        assert not psutil.pid_exists(pid)
        assert (await _cli(env, "status"))[:2] == (3, "stopped\n")

        assert (await _cli(env, "start"))[1] == f"bootstrap={bootstrap}\n"  # same port again
        assert "kept-across-restarts" in await _topics(bootstrap)
    finally:
        await _cli(env, "stop")
