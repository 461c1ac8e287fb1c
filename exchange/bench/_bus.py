"""Scenario ``bus``: the real bus, measured by the same load plan as the references.

    requester (ExchangeClient, TAX/registration)
        ─▶ out.TAX ─▶ exchange worker ─▶ in.NOCR ─▶ provider (Provider SDK, NOCR)
        ─▶ out.NOCR ─▶ exchange worker ─▶ replies.TAX (+ audit) ─▶ requester

The same hops as ``relay``, with everything the bus does on them: Avro envelopes and payloads
(encoded and validated by the SDKs, decoded by the worker), the catalog's policy (requester,
service, purpose), the correlation state in the worker's changelog, an outcome and an audit
record per inquiry, one Kafka transaction per partition batch, and the metrics of every
process. Each inquiry is ``nocr.person.verify.v1`` from the demo catalog, answered by a
provider that looks it up in a small table at once. The topics are the ones ``exchange topics
apply`` makes for the two agencies, under the run's own prefix.

:meth:`BusScenario.extra_measurements` then measures the worker's memory with a large number
of inquiries pending (:mod:`exchange.bench._pending`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from exchange._client import ExchangeClient
from exchange._errors import BenchmarkError, ExchangeError
from exchange._outcome import OutcomeKind
from exchange.bench._bus_env import apply_topics, bus_settings, remove_topics, worker_process
from exchange.bench._bus_provider import PROVIDER, REGISTER, SERVICE
from exchange.bench._loadgen import Requester
from exchange.bench._pending import measure_pending
from exchange.bench._plan import LoadPlan
from exchange.bench._scenario import ProcessSpec, ScenarioEnv, python_process

REQUESTER = "TAX"
SUBSYSTEM = "registration"
PURPOSE = "tax-registration"
AGENCIES = (REQUESTER, PROVIDER)
#: The longest the service allows: under overload an inquiry's latency is measured rather
#: than cut short by a ``TIMED_OUT`` (the references have no deadlines either).
DEADLINE = dt.timedelta(seconds=30)

_PERSON = next(iter(REGISTER))
PAYLOAD: dict[str, Any] = {"national_id": _PERSON, **REGISTER[_PERSON]}


class BusRequester:
    """``ask()`` is one :meth:`ExchangeClient.inquire`; anything but ``ANSWERED`` is an error."""

    def __init__(self, client: ExchangeClient) -> None:
        self._client = client

    async def ask(self) -> None:
        """Send one inquiry and wait for its outcome."""
        deadline = dt.datetime.now(dt.UTC) + DEADLINE
        outcome = await self._client.inquire(SERVICE, PAYLOAD, purpose=PURPOSE, deadline=deadline)
        if outcome.kind is not OutcomeKind.ANSWERED:
            raise BenchmarkError(f"inquiry {outcome.kind.value}: {outcome.detail or ''}")


@asynccontextmanager
async def bus_requester(env: ScenarioEnv) -> AsyncIterator[Requester]:
    """A started client of TAX/registration."""
    settings = bus_settings(env)
    async with ExchangeClient.connect(
        agency=REQUESTER, subsystem=SUBSYSTEM, settings=settings
    ) as client:
        yield BusRequester(client)


class BusScenario:
    """The real stream workers, the provider SDK and the client SDK."""

    def __init__(self, *, workers: int = 1, name: str = "bus", pending: bool = True) -> None:
        if workers < 1:
            raise ValueError("a bus needs at least one worker")
        self.name = name
        self.workers = workers
        self.pending = pending
        self.description = (
            "requester -> worker -> provider -> worker -> requester: SDKs, Avro, policy, "
            f"state, audit ({workers} worker process{'es' if workers > 1 else ''})"
        )

    async def prepare(self, env: ScenarioEnv) -> None:
        """Apply the two agencies' topics and the bus-wide ones."""
        await apply_topics(env, AGENCIES)

    def processes(self, env: ScenarioEnv) -> list[ProcessSpec]:
        """The worker(s), then the provider. Several workers are separate ``exchange worker``
        processes in one group (what ``--processes N`` runs), each measured on its own."""
        if self.workers == 1:
            workers = [worker_process(env)]
        else:
            workers = [worker_process(env, role=f"worker-{i + 1}") for i in range(self.workers)]
        return [*workers, python_process("provider", "exchange.bench._bus_provider:provider", env)]

    def requester(self, env: ScenarioEnv) -> AbstractAsyncContextManager[Requester]:
        """The client SDK of TAX/registration."""
        return bus_requester(env)

    async def cleanup(self, env: ScenarioEnv) -> None:
        """Delete the run's topics."""
        await remove_topics(env, AGENCIES)

    async def extra_measurements(self, env: ScenarioEnv, plan: LoadPlan) -> dict[str, Any]:
        """Worker memory with inquiries pending (fewer in a smoke plan); nothing when this
        scenario is a variant that leaves it to ``bus``."""
        if not self.pending or plan.pending <= 0:
            return {}
        try:
            return await measure_pending(env, plan.pending)
        except ExchangeError as exc:  # the main figures stand; say why this one is missing
            return {"pending_100k_rss_mb": None, "pending": {"error": exc.message}}


SCENARIO = BusScenario()
#: Two worker processes sharing the partitions: ``-s exchange.bench._bus:TWO_WORKERS``.
TWO_WORKERS = BusScenario(workers=2, name="bus-2w", pending=False)
