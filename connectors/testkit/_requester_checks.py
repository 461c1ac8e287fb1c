"""The conformance checks every requester connector passes against its real legacy side.

Each takes a running :class:`~connectors.testkit._requester.RequesterHarness` and returns
figures (seconds, counts) for reports; :func:`check_requester` runs them all in order.

- :func:`check_outcomes` — events answered FOUND and NOT_FOUND, refused by the provider
  (FAILED with its code), refused by the bus's policy (REJECTED with a reason) and never
  answered (TIMED_OUT) each get exactly that one outcome written back; malformed events are
  reported with a reason and never reach the provider.
- :func:`check_crash` — the connector is SIGKILLed while outcomes stream in, events appear
  while it is down, it restarts: every event written back once, none lost.
- :func:`check_source_outage` — the legacy side goes down while outcomes stream in (some
  written back already, the rest on their way): the circuit opens and intake pauses
  (``/health`` says so the whole time); it comes back: the circuit closes, the outcomes that
  arrived meanwhile are written, new events flow again.
- :func:`check_once_on_the_bus` — over everything above: still one thing written back per
  event; every event that reached the provider did so as exactly one inquiry id, routed once
  to ``in.<provider>``, with exactly one outcome on ``replies.<requester>``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from connectors.testkit._requester import LegacyEvent, RequesterHarness, Written, until
from connectors.testkit._script import FAILED_CODE, Reply

__all__ = [
    "check_crash",
    "check_once_on_the_bus",
    "check_outcomes",
    "check_requester",
    "check_source_outage",
]


async def check_requester(harness: RequesterHarness) -> dict[str, float]:
    """All the checks, in order (see the module docstring)."""
    figures = await check_outcomes(harness)
    figures |= await check_crash(harness)
    figures |= await check_source_outage(harness)
    figures |= await check_once_on_the_bus(harness)
    return figures


async def check_outcomes(harness: RequesterHarness) -> dict[str, float]:
    """Every kind of outcome written back exactly once; malformed events reported."""
    case, script = harness.case, harness.provider
    found, not_found, failed, refused, silent, bad = (harness.keys(t, n) for t, n in (
        ("found", 3), ("none", 1), ("failed", 1), ("refused", 1), ("silent", 1), ("bad", 2)
    ))  # fmt: skip
    for key in not_found:
        script.plan(key, Reply.NOT_FOUND)
    for key in failed:
        script.plan(key, Reply.ERROR)
    for key in silent:
        script.plan(key, Reply.SILENT)
    long_, short = case.long_deadline, case.short_deadline
    events = [LegacyEvent(k, case.purpose, long_) for k in found + not_found + failed]
    events += [LegacyEvent(k, case.refused_purpose, long_) for k in refused]
    events += [LegacyEvent(k, case.purpose, short) for k in silent]
    events += [LegacyEvent(k, case.purpose, long_, malformed=True) for k in bad]
    started = time.monotonic()
    await harness.emit(events)
    written = once(await harness.wait_written([e.key for e in events], within=short + case.settle))
    elapsed = time.monotonic() - started
    for key in found:
        expect(written[key], "ANSWERED", "FOUND")
    for key in not_found:
        expect(written[key], "ANSWERED", "NOT_FOUND")
    for key in failed:
        expect(written[key], "FAILED")
        assert written[key].reason == FAILED_CODE, written[key]
    for key in refused:
        expect(written[key], "REJECTED")
        assert written[key].reason, f"a REJECTED outcome needs its reason: {written[key]}"
    for key in silent:
        expect(written[key], "TIMED_OUT")
    for key in bad:
        assert written[key].kind in ("REJECTED", "ERROR"), written[key]
        assert written[key].reason, f"a malformed event needs its reason: {written[key]}"
    never = [key for key in refused + bad if key in script.ids]
    assert not never, f"these should never reach the provider: {never}"
    return {"outcomes_s": elapsed, "outcomes_events": len(events)}


async def check_crash(
    harness: RequesterHarness, *, before: int = 10, during: int = 4
) -> dict[str, float]:
    """SIGKILL mid-stream, events while down, restart: each event written back once."""
    case, script = harness.case, harness.provider
    first, later = harness.keys("crash", before), harness.keys("down", during)
    for index, key in enumerate(first):  # answered one by one, so the kill falls mid-stream
        script.plan(key, Reply.FOUND, delay=0.4 * (index + 1))
    await harness.emit([LegacyEvent(k, case.purpose, case.long_deadline) for k in first])
    await until(lambda: len(script.answered & set(first)) >= 3, case.settle, "first answers")
    await asyncio.sleep(0.2)  # the first outcomes reach the connector
    harness.kill_connector()
    answered_at_kill = len(script.answered & set(first))
    assert answered_at_kill < before, "the kill came too late to fall mid-stream"
    await harness.emit([LegacyEvent(k, case.purpose, case.long_deadline) for k in later])
    await asyncio.sleep(1.0)  # outcomes of inquiries in flight arrive while nobody listens
    restart_s = await harness.start_connector()
    started = time.monotonic()
    written = once(
        await harness.wait_written(first + later, within=case.long_deadline + case.settle)
    )
    for key in first + later:
        expect(written[key], "ANSWERED", "FOUND")
    return {
        "crash_answered_at_kill": answered_at_kill,
        "crash_restart_s": restart_s,
        "crash_caught_up_s": time.monotonic() - started,
    }


async def check_source_outage(
    harness: RequesterHarness, *, before: int = 6, after: int = 3, down_for: float = 3.0
) -> dict[str, float]:
    """Legacy side down while outcomes arrive → circuit open, intake paused, nothing lost;
    back → circuit closed, outcomes written, new events flow."""
    case, script = harness.case, harness.provider
    first, later = harness.keys("outage", before), harness.keys("back", after)
    for index, key in enumerate(first):  # answered one by one, mostly while it is down
        script.plan(key, Reply.FOUND, delay=0.4 * (index + 1))
    await harness.emit([LegacyEvent(k, case.purpose, case.long_deadline) for k in first])
    await until(lambda: script.reached(first), case.settle, "inquiries sent before the outage")
    await until(lambda: len(script.answered & set(first)) >= 2, case.settle, "first answers")
    await asyncio.to_thread(case.legacy.break_)
    down = time.monotonic()
    try:
        opened = await harness.wait_circuit("open")
        await _stays_paused(harness, down_for)
    finally:
        await asyncio.to_thread(case.legacy.heal)
    outage = time.monotonic() - down
    closed = await harness.wait_circuit("closed", within=60.0)
    await harness.emit([LegacyEvent(k, case.purpose, case.long_deadline) for k in later])
    written = once(
        await harness.wait_written(first + later, within=case.long_deadline + case.settle)
    )
    for key in first + later:
        expect(written[key], "ANSWERED", "FOUND")
    return {"outage_open_after_s": opened, "outage_s": outage, "outage_closed_after_s": closed}


async def _stays_paused(harness: RequesterHarness, seconds: float) -> None:
    """``/health`` reports the circuit open and intake paused throughout."""
    until_ = time.monotonic() + seconds
    while time.monotonic() < until_:
        status = await harness.health()
        assert status is not None, f"the connector died in the outage:\n{harness.log_tail()}"
        assert status["paused"], status
        assert status["circuit"] == "open", status
        await asyncio.sleep(0.2)


async def check_once_on_the_bus(harness: RequesterHarness) -> dict[str, float]:
    """One inquiry id per event, routed once, one outcome each (the bus's side of the books)."""
    script = harness.provider
    once(await harness.written())  # late second writes too (the checks stop at the first)
    twice = {key: ids for key, ids in script.ids.items() if len(ids) != 1}
    assert not twice, f"events that became more than one inquiry: {twice}"
    again = {i: n for i, n in script.calls.items() if n != 1}
    assert not again, f"inquiries handed to the provider more than once: {again}"
    ids = sorted(script.calls)
    routed = await harness.records_per_id(harness.in_topic, ids)
    assert set(routed.values()) == {1}, f"each inquiry routed once: {routed}"
    replies = await harness.records_per_id(harness.replies_topic, ids)
    assert set(replies.values()) == {1}, f"each inquiry has one outcome: {replies}"
    return {"inquiries": len(ids)}


def once(written: Mapping[str, Sequence[Written]]) -> dict[str, Written]:
    """The one thing written back per key (AssertionError if any key has more)."""
    twice = {key: items for key, items in written.items() if len(items) != 1}
    assert not twice, f"written back more than once: {twice}"
    return {key: items[0] for key, items in written.items()}


def expect(item: Written, kind: str, status: str | None = None) -> None:
    """``item`` is an outcome of ``kind`` (and ``status``)."""
    assert item.kind == kind, f"{item.key}: expected {kind}, got {item}"
    if status is not None:
        assert item.status == status, f"{item.key}: expected {kind}/{status}, got {item}"
