"""``exchange connector check`` and ``run``: config errors, reachability, health, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _worker_proc import bus_settings, create_bus_topics, exchange_command, running_worker

from connectors.testkit import LegacyProcess, free_port
from connectors.testkit._bus import bus_env
from exchange import ExchangeClient, ExchangeSettings, OutcomeKind

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEGACY = Path(__file__).parent / "legacy" / "address_api.py"
TOKEN = "cli-token"
CONFIG = """
kind: rest
name: post-cli
agency: POST
health: {{port: {health}}}
base_url: http://127.0.0.1:{port}
auth: {{type: bearer, token: "${{ADDRESS_API_TOKEN}}"}}
services:
  - service: post.address.lookup.v1
    path: /v2/addresses/{{payload.postal_code}}
    response: {{postal_code: $result.code, province: $result.region.province,
                county: $result.region.county, street: $result.street,
                building_number: $result.number}}
"""


def _exchange(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = exchange_command(*args)
    return subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)


def _env(settings: ExchangeSettings) -> dict[str, str]:
    return bus_env(settings, ADDRESS_API_TOKEN=TOKEN)


@pytest.fixture
def legacy() -> Iterator[LegacyProcess]:
    with LegacyProcess([str(LEGACY), str(port := free_port()), TOKEN], port) as running:
        yield running


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_check_lists_every_config_problem_with_its_path(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    """A malformed config: exit 1, one stderr line per problem, each with the field path."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: rest\nname: Post Address\nagency: POST\nbase_url: ftp://x\ntimeout: -1\n"
        "services:\n  - service: post.address.lookup.v1\n    methd: GET\n"
    )
    done = _exchange(["connector", "check", str(bad)], _env(bus_settings(settings)))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    fields = [line.split(": ")[1] for line in lines[:-1]]
    assert sorted(fields) == [
        "base_url",
        "name",
        "services[0].methd",
        "services[0].path",
        "timeout",
    ], lines
    assert lines[-1].endswith("5 problem(s)")


def test_check_reaches_the_legacy_system_or_says_why_not(
    settings: ExchangeSettings, legacy: LegacyProcess, tmp_path: Path
) -> None:
    """Up: exit 0 and ``ok``; down: exit 1 and one line."""
    config = tmp_path / "rest.yaml"
    config.write_text(CONFIG.format(port=legacy.port, health=0))
    env = _env(bus_settings(settings))
    done = _exchange(["connector", "check", str(config)], env)
    assert done.returncode == 0, done.stderr
    assert "ok: post-cli (rest)" in done.stdout
    legacy.kill()
    done = _exchange(["connector", "check", str(config)], env)
    assert done.returncode == 1
    assert "cannot reach its legacy system" in done.stderr


async def test_run_answers_serves_health_and_stops_on_sigterm(
    settings: ExchangeSettings, legacy: LegacyProcess, tmp_path: Path
) -> None:
    """``connector run``: answers through the bus, /health and /metrics, clean SIGTERM exit."""
    bus = bus_settings(settings)
    await create_bus_topics(bus, ["TAX", "POST"])
    health = free_port()
    config = tmp_path / "rest.yaml"
    config.write_text(CONFIG.format(port=legacy.port, health=health))
    with running_worker(bus):
        connector = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            exchange_command("connector", "run", str(config)),
            env=_env(bus),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        try:
            async with ExchangeClient.connect(
                agency="TAX", subsystem="registration", settings=bus
            ) as client:
                outcome = await client.inquire(
                    "post.address.lookup.v1",
                    {"postal_code": "1193653471"},
                    purpose="tax-registration",
                    timeout=30,
                )
            assert outcome.kind is OutcomeKind.ANSWERED, outcome
            status, body = _get(f"http://127.0.0.1:{health}/health")
            assert status == 200
            assert json.loads(body)["circuit"] == "closed"
            _, metrics = _get(f"http://127.0.0.1:{health}/metrics")
            assert 'exchange_connector_calls_total{connector="post-cli",result="ok"} 1.0' in metrics
            started = time.monotonic()
            connector.send_signal(signal.SIGTERM)
            assert connector.wait(30) == 0
            assert time.monotonic() - started < 15
        finally:
            if connector.poll() is None:
                connector.kill()
                connector.wait()
            assert connector.stderr is not None
            log = connector.stderr.read().decode()
            connector.stderr.close()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "connector stopped" for e in events), log[-3000:]
