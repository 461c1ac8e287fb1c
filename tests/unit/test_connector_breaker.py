"""The circuit breaker as pure logic, and the guard's retries and circuit-gated calls."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from connectors._breaker import CircuitBreaker, CircuitState
from connectors._config import CircuitSettings, RetrySettings
from connectors._guard import LegacyGuard
from exchange._errors import PermanentError, RetriableError
from exchange._metrics import ConnectorMetrics


def test_consecutive_failures_open_the_circuit_and_a_success_resets_the_count() -> None:
    """Only ``failure_threshold`` failures *in a row* open it."""
    breaker = CircuitBreaker(failure_threshold=3, probe_interval=1.0)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    breaker.record_success()
    breaker.record_failure(0.0)
    assert breaker.record_failure(0.0) is CircuitState.CLOSED
    assert breaker.record_failure(10.0) is CircuitState.OPEN
    assert breaker.next_probe == 11.0
    assert not breaker.try_acquire()


def test_probes_back_off_until_one_passes_then_one_trial_call_decides() -> None:
    """OPEN → failed probes double the wait (capped) → HALF_OPEN → one trial → CLOSED."""
    breaker = CircuitBreaker(failure_threshold=1, probe_interval=1.0, max_probe_interval=3.0)
    breaker.record_failure(0.0)
    assert not breaker.probe_due(0.5)
    assert breaker.probe_due(1.0)
    breaker.record_probe(False, 1.0)
    assert breaker.next_probe == 3.0
    breaker.record_probe(False, 3.0)
    assert breaker.next_probe == 6.0  # 4 s capped at 3 s
    assert breaker.record_probe(True, 6.0) is CircuitState.HALF_OPEN
    assert breaker.try_acquire()
    assert not breaker.try_acquire()  # one trial at a time
    assert breaker.record_success() is CircuitState.CLOSED
    assert breaker.try_acquire()


def test_a_failed_trial_reopens_and_a_cancelled_one_frees_its_slot() -> None:
    """HALF_OPEN: the trial's failure reopens; a trial without verdict gives the slot back."""
    breaker = CircuitBreaker(failure_threshold=1, probe_interval=1.0)
    breaker.trip(0.0)
    breaker.record_probe(True, 1.0)
    assert breaker.try_acquire()
    breaker.release()
    assert breaker.try_acquire()
    assert breaker.record_failure(2.0) is CircuitState.OPEN
    assert breaker.next_probe == 4.0


def _guard(check_ok: list[bool], **retry: float) -> tuple[LegacyGuard, list[CircuitState]]:
    moves: list[CircuitState] = []

    async def check() -> None:
        if not check_ok[0]:
            raise RetriableError("down")

    guard = LegacyGuard(
        "t",
        retry=RetrySettings(
            **{"initial_backoff": 0.001, "max_backoff": 0.01, "jitter": 0, **retry}
        ),
        circuit=CircuitSettings(failure_threshold=3, probe_interval=0.01, max_probe_interval=0.02),
        check=check,
        metrics=ConnectorMetrics(CollectorRegistry()),
        on_change=moves.append,
    )
    return guard, moves


async def test_retriable_errors_are_retried_until_the_call_succeeds() -> None:
    """Two transient failures, then success: one result, the circuit stays closed."""
    guard, moves = _guard([True], attempts=5)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetriableError("blip")
        return "ok"

    assert await guard.call(flaky) == "ok"
    assert len(calls) == 3
    assert moves == []


async def test_spent_attempts_raise_and_permanent_errors_are_not_retried() -> None:
    """Attempts spent while closed → the RetriableError; a PermanentError → raised at once."""
    guard, _ = _guard([True], attempts=2)
    calls = []

    async def down() -> None:
        calls.append(1)
        raise RetriableError("down")

    with pytest.raises(RetriableError):
        await guard.call(down)
    assert len(calls) == 2

    async def refused() -> None:
        calls.append(1)
        raise PermanentError("no", code="NO")

    with pytest.raises(PermanentError):
        await guard.call(refused)
    assert len(calls) == 3


async def test_a_down_system_opens_the_circuit_and_calls_wait_for_recovery() -> None:
    """Calls wait while OPEN (they do not spend attempts), probes pass, the call succeeds."""
    system_up = [False]
    guard, moves = _guard(system_up, attempts=5)

    async def call() -> str:
        if not system_up[0]:
            raise RetriableError("down")
        return "answered"

    probes = asyncio.create_task(guard.run_probes())
    waiting = [asyncio.create_task(guard.call(call)) for _ in range(4)]
    # Polled, not a fixed sleep: a loaded machine may take longer than usual to open it.
    async with asyncio.timeout(10):
        while guard.state is not CircuitState.OPEN:  # noqa: ASYNC110 - polls the breaker's state
            await asyncio.sleep(0.005)
    # A while OPEN (many probe intervals): calls that spent their attempts would be done now.
    await asyncio.sleep(0.1)
    assert not any(task.done() for task in waiting)
    system_up[0] = True
    results = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    probes.cancel()
    assert results == ["answered"] * 4
    assert moves[0] is CircuitState.OPEN
    assert moves[-2:] == [CircuitState.HALF_OPEN, CircuitState.CLOSED]


async def test_health_endpoint_says_503_while_open_and_serves_metrics() -> None:
    """/health follows the status callback; /metrics is the registry's text; others 404."""
    from connectors._health import HealthServer

    registry = CollectorRegistry()
    ConnectorMetrics(registry).up.labels("t").set(1)
    status = {"healthy": True, "circuit": "closed"}
    server = HealthServer(registry, lambda: status, host="127.0.0.1")
    port = await server.start(0)

    async def get(path: str) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    try:
        assert (await get("/health"))[0] == 200
        status.update(healthy=False, circuit="open")
        code, body = await get("/health")
        assert code == 503
        assert b'"circuit": "open"' in body
        code, body = await get("/metrics")
        assert b'exchange_connector_up{connector="t"} 1.0' in body
        assert (await get("/nope"))[0] == 404
    finally:
        await server.close()
