"""An unexpected exception in a connector's call is logged, counted and retried with backoff
under the guard (connectors/_runtime_errors.py), never dropped; no broker needed."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from prometheus_client import CollectorRegistry

from connectors._breaker import CircuitState
from connectors._config import CircuitSettings, RetrySettings
from connectors._guard import LegacyGuard
from connectors._mapping import MappingError
from connectors._runtime_errors import retriable_unless_planned, supervise
from exchange._errors import PermanentError, RetriableError
from exchange._metrics import ConnectorMetrics

FAST = RetrySettings(attempts=3, initial_backoff=0.001, max_backoff=0.005, jitter=0.001)


def _guard(metrics: ConnectorMetrics, threshold: int = 5) -> LegacyGuard:
    async def check() -> None:
        return None

    circuit = CircuitSettings(failure_threshold=threshold, probe_interval=0.01)
    return LegacyGuard("acme", retry=FAST, circuit=circuit, check=check, metrics=metrics)


def _unexpected(registry: CollectorRegistry, step: str) -> float:
    labels = {"connector": "acme", "step": step}
    return registry.get_sample_value("exchange_connector_unexpected_errors_total", labels) or 0.0


async def test_an_oserror_twice_is_retried_and_the_call_then_succeeds() -> None:
    """Two OSErrors then success: one result, both errors logged with the inquiry id and counted."""
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    calls: list[int] = []

    async def deliver() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise OSError("share went away")
        return "written"

    call = retriable_unless_planned(
        deliver, metrics=metrics, connector="acme", step="deliver", inquiry_id="i-1"
    )
    with structlog.testing.capture_logs() as logs:
        assert await _guard(metrics).call(call) == "written"
    assert len(calls) == 3
    assert _unexpected(registry, "deliver") == 2
    seen = [e for e in logs if e["event"] == "unexpected error in the connector"]
    assert [(e["connector"], e["inquiry_id"], e["error"]) for e in seen] == [
        ("acme", "i-1", "OSError")
    ] * 2


async def test_an_unexpected_error_that_persists_opens_the_circuit() -> None:
    """A call that always raises a bug-like error ends as RetriableError and trips the breaker."""
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    guard = _guard(metrics, threshold=3)

    async def deliver() -> None:
        raise KeyError("status")

    call = retriable_unless_planned(deliver, metrics=metrics, connector="acme", step="deliver")
    with pytest.raises(RetriableError) as raised:
        await guard.call(call)
    assert raised.value.code == "HANDLER_ERROR"
    assert isinstance(raised.value.__cause__, KeyError)
    assert guard.state is CircuitState.OPEN
    assert _unexpected(registry, "deliver") == 3


async def test_planned_errors_pass_through_uncounted() -> None:
    """RetriableError and PermanentError are the connector's own verdicts: not 'unexpected'."""
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)

    async def refuse() -> None:
        raise PermanentError("no such case", code="NO_CASE")

    call = retriable_unless_planned(refuse, metrics=metrics, connector="acme", step="deliver")
    with pytest.raises(PermanentError):
        await _guard(metrics).call(call)
    assert _unexpected(registry, "deliver") == 0


async def test_a_mapping_error_in_answer_is_counted_but_not_retried() -> None:
    """A template that cannot render fails the same way every time: raised at once, counted."""
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    calls: list[int] = []

    async def answer() -> None:
        calls.append(1)
        raise MappingError("bad path $reslt")

    call = retriable_unless_planned(answer, metrics=metrics, connector="acme", step="answer")
    with pytest.raises(MappingError):
        await _guard(metrics).call(call)
    assert len(calls) == 1
    assert _unexpected(registry, "answer") == 1


async def test_a_supervised_task_that_fails_is_counted_and_started_again() -> None:
    """A background task raising is restarted after a pause, and each failure is counted."""
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    runs: list[int] = []

    async def probes() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("probe loop broke")

    async with asyncio.timeout(5):
        await supervise(probes, metrics=metrics, connector="acme", step="probes")
    assert len(runs) == 2
    assert _unexpected(registry, "probes") == 1
