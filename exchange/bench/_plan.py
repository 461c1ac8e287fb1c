"""The load plan every scenario is measured by, run inside the requester's process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from exchange.bench._loadgen import Requester, closed_loop, open_loop, wait_ready

#: Offered loads (inquiries/s) of a default run.
DEFAULT_LOADS: tuple[int, ...] = (250, 500, 1000, 2000)


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """Phases, in order: readiness, warm-up, saturation, then each offered load ascending."""

    loads: tuple[int, ...] = DEFAULT_LOADS
    #: Seconds of open-loop load at each offered rate.
    load_s: float = 6.0
    #: Seconds of closed-loop load for the saturation throughput.
    saturation_s: float = 10.0
    #: Inquiries in flight during warm-up and saturation.
    concurrency: int = 256
    warmup_s: float = 3.0
    #: After a phase's last send, how long its outstanding inquiries may still take.
    drain_s: float = 10.0
    #: How long the scenario's processes may take to answer a first inquiry.
    ready_timeout_s: float = 90.0
    #: Pause between phases so one phase's tail does not bleed into the next.
    settle_s: float = 0.5
    #: Inquiries left pending for the memory measurement of scenarios that make one.
    pending: int = 100_000

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadPlan:
        """The inverse of :meth:`to_json`."""
        return cls(**{**data, "loads": tuple(data["loads"])})

    def expected_seconds(self) -> float:
        """Roughly how long the phases take when the system keeps up (for time-outs)."""
        per_load = self.load_s + self.settle_s
        return self.warmup_s + self.saturation_s + len(self.loads) * per_load + 2 * self.settle_s


#: A few seconds per scenario: proves the harness works end to end, measures nothing.
SMOKE_PLAN = LoadPlan(
    loads=(50, 100),
    load_s=1.0,
    saturation_s=1.5,
    concurrency=16,
    warmup_s=0.5,
    drain_s=5.0,
    ready_timeout_s=60.0,
    settle_s=0.1,
    pending=200,
)


def parse_loads(text: str) -> tuple[int, ...]:
    """``"250,500,1000"`` -> ``(250, 500, 1000)``, sorted, each a positive integer."""
    try:
        loads = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise ValueError(f"offered loads must be integers separated by commas: {text!r}") from exc
    if not loads or loads[0] <= 0:
        raise ValueError(f"offered loads must be positive integers: {text!r}")
    return tuple(loads)


async def run_plan(
    requester: Requester, plan: LoadPlan, on_measure: Callable[[], None]
) -> dict[str, Any]:
    """Run every phase; ``on_measure`` is called once warm-up is over. Returns JSON values."""
    ready_s = await wait_ready(requester, limit_s=plan.ready_timeout_s)
    await closed_loop(requester, concurrency=plan.concurrency, duration=plan.warmup_s)
    await asyncio.sleep(plan.settle_s)
    on_measure()
    sat = await closed_loop(
        requester,
        concurrency=plan.concurrency,
        duration=plan.saturation_s,
        drain_timeout=plan.drain_s,
    )
    latency: dict[str, Any] = {}
    for rate in plan.loads:
        await asyncio.sleep(plan.settle_s)
        res = await open_loop(
            requester, rate=rate, duration=plan.load_s, drain_timeout=plan.drain_s
        )
        latency[str(rate)] = {
            **res.latency.to_json(),
            "sent": res.sent,
            "errors": res.errors,
            "achieved_per_s": res.achieved_per_s,
        }
    return {
        "ready_s": round(ready_s, 2),
        "throughput_per_s": sat.throughput_per_s,
        "saturation": {
            "concurrency": sat.concurrency,
            "seconds": sat.seconds,
            "completed": sat.completed,
            "errors": sat.errors,
            "latency_ms": sat.latency.to_json(),
        },
        "latency_ms": latency,
    }
