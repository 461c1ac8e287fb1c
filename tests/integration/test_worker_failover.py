"""Workers that die, stop and share: exactly one outcome per inquiry through all of it.

Each test runs real ``exchange worker`` subprocesses against its own topics, an SDK provider
for NOCR (COMPANIES never answers, so its inquiries time out), and reads ``replies`` and
``in`` at ``read_committed``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable

import pytest
from _worker_proc import (
    STANDING,
    VERIFY,
    BusTap,
    Raw,
    Records,
    WorkerProcess,
    bus_settings,
    create_bus_topics,
    running_worker,
)
from samples import VERDICT

from exchange import Answer, ExchangeSettings, Inquiry, Provider
from exchange._topology import Topics

pytestmark = pytest.mark.integration


class Scene:
    """One test's bus: settings, topic names, record builder and tap."""

    def __init__(self, settings: ExchangeSettings, tap: BusTap) -> None:
        self.settings = settings
        self.topics = Topics.for_settings(settings)
        self.records = Records(settings)
        self.tap = tap

    async def send(self, raws: Iterable[Raw]) -> None:
        """Write requests to ``out.TAX``."""
        await self.tap.send(self.topics.out("TAX"), *raws)

    def outcomes(self, raws: Iterable[Raw]) -> dict[str, list[str]]:
        """Each inquiry's outcome kinds read so far from ``replies.TAX``."""
        replies = self.topics.replies("TAX")
        return {
            raw.inquiry_id: [
                self.records.outcome(r.value)["kind"] for r in self.tap.of(replies, raw.key)
            ]
            for raw in raws
        }

    async def settled(self, raws: list[Raw], within: float = 60.0) -> dict[str, list[str]]:
        """Wait until every inquiry has an outcome, then a quiet second for stray ones."""
        async with asyncio.timeout(within):
            while True:
                if all(self.outcomes(raws).values()):
                    break
                await asyncio.sleep(0.2)
        await self.tap.quiet()
        return self.outcomes(raws)


@pytest.fixture
async def scene(settings: ExchangeSettings) -> AsyncIterator[Scene]:
    """Topics for TAX, NOCR and COMPANIES, a NOCR provider that answers, and a tap."""
    bus = bus_settings(settings)
    await create_bus_topics(bus, ["TAX", "NOCR", "COMPANIES"])
    provider = Provider(agency="NOCR", settings=bus)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.found(VERDICT)

    t = Topics.for_settings(bus)
    async with provider, BusTap(bus, [t.replies("TAX"), t.in_("NOCR")]) as tap:
        yield Scene(bus, tap)


def _requests(scene: Scene, count: int, service: str = VERIFY, deadline: float = 25.0) -> list[Raw]:
    return [scene.records.request(service, deadline=deadline) for _ in range(count)]


async def _stream(scene: Scene, raws: list[Raw], per_step: int = 10) -> None:
    """Send ``raws`` a few at a time, as a steady stream."""
    for start in range(0, len(raws), per_step):
        await scene.send(raws[start : start + per_step])
        await asyncio.sleep(0.05)


def _exactly_once(outcomes: dict[str, list[str]], kind: str) -> None:
    kinds = Counter(tuple(k) for k in outcomes.values())
    assert kinds == Counter({(kind,): len(outcomes)}), kinds


async def test_sigkill_mid_stream_then_restart_settles_every_inquiry_once(scene: Scene) -> None:
    """Killed while busy and restarted: one outcome each, none twice, pending ones time out."""
    before, after = _requests(scene, 120), _requests(scene, 60)
    waiting = _requests(scene, 10, STANDING, deadline=4.0)
    with running_worker(scene.settings) as first:
        await scene.send(waiting)
        stream = asyncio.create_task(_stream(scene, before))
        await asyncio.sleep(0.3)  # mid-stream: some routed, some answered, some not yet read
        first.kill()
        await stream
    with running_worker(scene.settings):
        await _stream(scene, after)
        outcomes = await scene.settled(before + after + waiting)
    _exactly_once({raw.inquiry_id: outcomes[raw.inquiry_id] for raw in before + after}, "ANSWERED")
    _exactly_once({raw.inquiry_id: outcomes[raw.inquiry_id] for raw in waiting}, "TIMED_OUT")
    routed = Counter(r.key for r in scene.tap.records[scene.topics.in_("NOCR")])
    assert set(routed.values()) == {1}, "a request was routed twice"


async def test_requests_written_in_time_but_read_after_their_deadline_time_out(
    scene: Scene,
) -> None:
    """Written while no worker runs, read after their deadline: TIMED_OUT (the bus was late,
    not the requester), never routed; a request whose deadline had passed when written is
    still REJECTED."""
    late = _requests(scene, 5, deadline=1.0)
    expired = _requests(scene, 3, deadline=-1.0)
    await scene.send(late + expired)
    await asyncio.sleep(1.5)  # every deadline passes before a worker reads them
    with running_worker(scene.settings):
        outcomes = await scene.settled(late + expired)
    _exactly_once({r.inquiry_id: outcomes[r.inquiry_id] for r in late}, "TIMED_OUT")
    _exactly_once({r.inquiry_id: outcomes[r.inquiry_id] for r in expired}, "REJECTED")
    routed = {r.key for r in scene.tap.records[scene.topics.in_("NOCR")]}
    assert routed.isdisjoint(r.key for r in late + expired)


async def test_a_stopping_worker_hands_its_partitions_and_timeouts_to_the_other(
    scene: Scene,
) -> None:
    """Two workers split the partitions; SIGTERM on one: the other takes over its inquiries."""
    with (
        running_worker(scene.settings) as first,
        running_worker(scene.settings, owns=set()) as second,
    ):
        await _split(first, second)
        answered = _requests(scene, 20)
        waiting = _requests(scene, 20, STANDING, deadline=6.0)
        await scene.send(answered + waiting)
        await _routed_to_both(scene, waiting)
        took = second.terminate()
        assert second.popen.returncode == 0
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
        first.wait_assigned({0, 1})
        later = _requests(scene, 20)
        await scene.send(later)
        outcomes = await scene.settled(answered + waiting + later)
    _exactly_once({r.inquiry_id: outcomes[r.inquiry_id] for r in answered + later}, "ANSWERED")
    _exactly_once({r.inquiry_id: outcomes[r.inquiry_id] for r in waiting}, "TIMED_OUT")


async def _split(first: WorkerProcess, second: WorkerProcess) -> None:
    """Wait until each worker owns one of the two partitions."""
    async with asyncio.timeout(60):
        while True:
            owned = (first.assigned, second.assigned)
            if [len(o) for o in owned] == [1, 1] and owned[0] | owned[1] == {0, 1}:
                return
            await asyncio.sleep(0.1)


async def _routed_to_both(scene: Scene, raws: list[Raw]) -> None:
    """Wait until every request was routed (COMPANIES' in topic has them all)."""
    async with BusTap(scene.settings, [scene.topics.in_("COMPANIES")]) as tap:
        for raw in raws:
            await tap.wait(scene.topics.in_("COMPANIES"), raw.key)
        partitions = {r.partition for r in tap.records[scene.topics.in_("COMPANIES")]}
    assert partitions == {0, 1}, "both workers should hold pending inquiries"


async def test_processes_option_runs_engines_in_one_group(scene: Scene) -> None:
    """``--processes 2``: two engine processes share the work; SIGTERM stops them all."""
    with running_worker(scene.settings, args=["--processes", "2"]) as worker:
        worker.wait_for(lambda e: e.get("event") == "workers started")
        raws = _requests(scene, 40)
        await scene.send(raws)
        outcomes = await scene.settled(raws)
        pids = {e["pid"] for e in worker.events if e.get("event") == "worker started"}
        took = worker.terminate()
    _exactly_once(outcomes, "ANSWERED")
    assert len(pids) == 2
    assert worker.popen.returncode == 0
    assert took < 10.0, f"SIGTERM took {took:.1f} s"
