"""The bus's stream workers on the real broker: a real ``exchange worker`` subprocess.

One worker serves every test of this module (its start-up is the slow part); each test uses
its own inquiry ids. Requests and responses are written raw, as a client in another language
would, except where the SDK is the point; outcomes are read at ``read_committed``.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _worker_proc import (
    STANDING,
    VERIFY,
    BusTap,
    Records,
    WorkerProcess,
    bus_settings,
    create_bus_topics,
    running_worker,
)
from samples import PERSON, VERDICT

from exchange import Answer, ExchangeClient, ExchangeSettings, Inquiry, OutcomeKind, Provider
from exchange._topology import Topics
from exchange._wire import (
    DEAD_LETTER,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE_OFFSET,
    HEADER_DLQ_SOURCE_TOPIC,
    HEADER_REPLY_TO,
    header_value,
)

pytestmark = pytest.mark.integration

AGENCIES = ["TAX", "NOCR", "COMPANIES"]
#: Small, so an oversized request is cheap to write.
MAX_RECORD_BYTES = 16_384


class Bus:
    """The module's settings, topic names, running worker, record builder and tap."""

    def __init__(self, settings: ExchangeSettings, worker: WorkerProcess) -> None:
        self.settings = settings
        self.worker = worker
        self.topics = Topics.for_settings(settings)
        self.records = Records(settings)
        self.tap: BusTap

    def outcome(self, record: Any) -> dict[str, Any]:
        """A decoded outcome record."""
        return self.records.outcome(record.value)

    async def outcomes(self, inquiry_id: str, agency: str = "TAX") -> list[dict[str, Any]]:
        """Every outcome of ``inquiry_id`` at ``agency``, waiting for the first."""
        found = await self.tap.wait(self.topics.replies(agency), inquiry_id)
        return [self.outcome(record) for record in found]

    async def audits(self, inquiry_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The audit records of ``inquiry_id``, waiting for ``count`` of them."""
        found = await self.tap.wait(self.topics.audit, inquiry_id, count=count)
        return [self.records.audit(record.value) for record in found]


@pytest.fixture(scope="module")
def running(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """The module's topics and one running worker (metrics on a free port)."""
    base = ExchangeSettings(
        kafka_bootstrap=kafka_bootstrap,
        state_dir=tmp_path_factory.mktemp("worker"),
        topic_prefix=f"wk-{uuid.uuid4().hex[:8]}",
    )
    settings = bus_settings(base)
    asyncio.run(create_bus_topics(settings, AGENCIES))
    env = {"EXCHANGE_MAX_RECORD_BYTES": str(MAX_RECORD_BYTES)}
    with running_worker(settings, args=["--metrics-port", "0"], env=env) as worker:
        yield Bus(settings, worker)


@pytest.fixture
async def bus(running: Bus) -> AsyncIterator[Bus]:
    """The running bus with a fresh tap on its output topics."""
    t = running.topics
    outputs = [t.replies("TAX"), t.replies("COMPANIES"), t.audit, t.dlq, t.in_("NOCR")]
    async with BusTap(running.settings, outputs) as tap:
        running.tap = tap
        yield running


async def test_answered_and_failed_through_the_sdk(bus: Bus) -> None:
    """SDK client -> worker -> SDK provider and back: FOUND is ANSWERED, an error FAILED."""
    provider = Provider(agency="NOCR", settings=bus.settings)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        if inquiry.payload["last_name"] == "Down":
            return Answer.error("REGISTER_DOWN", "the register is down", retriable=True)
        return Answer.found(VERDICT)

    client = ExchangeClient.connect(agency="TAX", subsystem="registration", settings=bus.settings)
    async with provider, client as tax:
        answered = await tax.inquire(VERIFY, PERSON, purpose="tax-registration", timeout=20)
        down = {**PERSON, "last_name": "Down"}
        failed = await tax.inquire(VERIFY, down, purpose="tax-registration", timeout=20)
    assert (answered.kind, answered.status) == (OutcomeKind.ANSWERED, "FOUND")
    assert answered.payload is not None
    assert answered.payload["national_id_status"] == "VALID"
    assert (failed.kind, failed.error_code) == (OutcomeKind.FAILED, "REGISTER_DOWN")
    (settled,) = await bus.audits(str(answered.inquiry_id))
    assert (settled["event"], settled["kind"], settled["within_deadline"]) == (
        "SETTLED",
        "ANSWERED",
        True,
    )
    (failure,) = await bus.audits(str(failed.inquiry_id))
    assert (failure["kind"], failure["error_code"]) == ("FAILED", "REGISTER_DOWN")


async def test_every_refusal_is_a_rejected_outcome_with_its_reason(bus: Bus) -> None:
    """Each routing rule refuses with its reason; nothing refused reaches the provider."""
    r = bus.records
    other = str(uuid.uuid4())
    cases = {
        "MALFORMED": r.request(key=other.encode()),
        "UNKNOWN_AGENCY": r.request(requester=("TAX", "no-such-subsystem")),
        "WRONG_REQUESTER": r.request(requester=("NOCR", None)),
        "UNKNOWN_SERVICE": r.request(service_version=9),
        "NOT_ALLOWED": r.request(requester=("TAX", "audit")),
        "PURPOSE_NOT_ALLOWED": r.request(purpose="curiosity"),
        "DEADLINE_PAST": r.request(deadline=-1.0),
        "DEADLINE_TOO_FAR": r.request(deadline=3600.0),
        "INVALID_PAYLOAD": r.request(payload=r.response(other).value),
        "PAYLOAD_TOO_LARGE": r.request(payload=b"\xc3\x01" + bytes(MAX_RECORD_BYTES)),
    }
    await bus.tap.send(bus.topics.out("TAX"), *cases.values())
    for reason, raw in cases.items():
        (outcome,) = await bus.outcomes(raw.inquiry_id)
        assert (outcome["kind"], outcome["reject_reason"]) == ("REJECTED", reason), outcome
        assert outcome["detail"], reason
        (audit,) = await bus.audits(raw.inquiry_id)
        assert (audit["event"], audit["reject_reason"]) == ("SETTLED", reason)
    reply_to = header_value(
        bus.tap.of(bus.topics.replies("TAX"), cases["WRONG_REQUESTER"].inquiry_id)[0].headers,
        HEADER_REPLY_TO,
    )
    assert reply_to == b"tap"  # copied from the request, so the right instance gets it
    (letter,) = await bus.tap.wait(bus.topics.dlq, cases["PAYLOAD_TOO_LARGE"].key)
    assert header_value(letter.headers, HEADER_DLQ_REASON) == b"payload-too-large"
    assert letter.value == cases["PAYLOAD_TOO_LARGE"].value
    assert not any(bus.tap.of(bus.topics.in_("NOCR"), raw.key) for raw in cases.values())


async def test_a_pending_inquiry_times_out_and_a_late_response_is_only_audited(bus: Bus) -> None:
    """No answer by the deadline: TIMED_OUT on the wall clock; a response after it is LATE."""
    raw = bus.records.request(STANDING, deadline=2.0)
    started = time.monotonic()
    await bus.tap.send(bus.topics.out("TAX"), raw)
    (outcome,) = await bus.outcomes(raw.inquiry_id)
    assert outcome["kind"] == "TIMED_OUT"
    assert 1.5 < time.monotonic() - started < 10
    late = bus.records.response(raw.inquiry_id, STANDING, status="NOT_FOUND")
    await bus.tap.send(bus.topics.out("COMPANIES"), late)
    audits = await bus.audits(raw.inquiry_id, count=2)
    assert [(a["event"], a["kind"]) for a in audits] == [
        ("SETTLED", "TIMED_OUT"),
        ("LATE_RESPONSE", None),
    ]
    assert audits[0]["within_deadline"] is False
    await bus.tap.quiet()
    assert len(bus.tap.of(bus.topics.replies("TAX"), raw.inquiry_id)) == 1


async def test_duplicates_and_foreign_responses_never_make_a_second_outcome(bus: Bus) -> None:
    """A repeated request is routed once; foreign and repeated responses are only audited."""
    r, topics = bus.records, bus.topics
    request = r.request()
    await bus.tap.send(topics.out("TAX"), request, request)
    await bus.tap.wait(topics.in_("NOCR"), request.key)  # the provider answers what it read
    taken = r.request(
        requester=("COMPANIES", "registration"),
        purpose="company-registration",
        inquiry_id=request.inquiry_id,
    )
    await bus.tap.send(topics.out("COMPANIES"), taken)
    (refused,) = await bus.outcomes(request.inquiry_id, agency="COMPANIES")
    assert (refused["kind"], refused["reject_reason"]) == ("REJECTED", "OTHER")
    foreign = r.response(request.inquiry_id, responder="COMPANIES")
    await bus.tap.send(topics.out("COMPANIES"), foreign)
    answer = r.response(request.inquiry_id)
    await bus.tap.send(topics.out("NOCR"), answer)
    (outcome,) = await bus.outcomes(request.inquiry_id)
    assert (outcome["kind"], outcome["status"]) == ("ANSWERED", "FOUND")
    await bus.tap.send(topics.out("NOCR"), answer)
    events = [a["event"] for a in await bus.audits(request.inquiry_id, count=5)]
    assert sorted(events) == sorted(
        [
            "DUPLICATE_REQUEST",  # the same request again
            "DUPLICATE_REQUEST",  # another agency reusing the id
            "FOREIGN_RESPONSE",
            "SETTLED",
            "DUPLICATE_RESPONSE",
        ]
    )
    await bus.tap.quiet()
    assert len(bus.tap.of(topics.replies("TAX"), request.inquiry_id)) == 1
    assert len(bus.tap.of(topics.in_("NOCR"), request.inquiry_id)) == 1


async def test_undecodable_records_are_dead_lettered_and_the_next_inquiry_is_answered(
    bus: Bus,
) -> None:
    """Garbage, an unknown schema and a wrong record type go to the DLQ as they were."""
    r, topics, out = bus.records, bus.topics, bus.topics.out("TAX")
    letter = {
        "reason": "bad-framing",
        "message": "a dead letter is not an inquiry record",
        "source_topic": out,
        "source_partition": 0,
        "source_offset": 0,
        "source_timestamp": None,
        "original_key": None,
        "dead_lettered_at": 0,
        "component": None,
    }
    bad = {
        b"garbage": (b"not avro at all", b"bad-framing"),
        b"unknown": (b"\xc3\x01" + bytes(8) + b"body", b"unknown-schema"),
        b"truncated": (r.response(str(uuid.uuid4())).value[:11], b"schema-mismatch"),
        b"wrong-type": (r.codec.encode(DEAD_LETTER, letter), b"unexpected-record"),
    }
    for key, (value, _) in bad.items():
        await bus.tap.send_bytes(out, value, key=key)
    good = r.request()
    await bus.tap.send(out, good)
    await bus.tap.wait(topics.in_("NOCR"), good.key)  # the provider answers what it read
    await bus.tap.send(topics.out("NOCR"), r.response(good.inquiry_id))
    (outcome,) = await bus.outcomes(good.inquiry_id)
    assert outcome["kind"] == "ANSWERED"
    for key, (value, reason) in bad.items():
        (dead,) = await bus.tap.wait(topics.dlq, key)
        assert dead.value == value
        assert header_value(dead.headers, HEADER_DLQ_REASON) == reason
        assert header_value(dead.headers, HEADER_DLQ_SOURCE_TOPIC) == out.encode()
        assert header_value(dead.headers, HEADER_DLQ_SOURCE_OFFSET) is not None


async def test_metrics_count_outcomes_pending_and_lag(bus: Bus) -> None:
    """/metrics shows settled inquiries by outcome, rejects by reason, pending, lag and batch
    times."""
    raw = bus.records.request(purpose="curiosity")
    await bus.tap.send(bus.topics.out("TAX"), raw)
    await bus.outcomes(raw.inquiry_id)
    url = bus.worker.wait_for(lambda e: e.get("event") == "serving metrics")["url"]
    wanted = [
        # Labels come sorted by name.
        r'exchange_inquiries_total\{outcome="REJECTED",provider="NOCR",requester="TAX",'
        r'service="nocr.person.verify.v1"\} [1-9]',
        r'exchange_rejects_total\{reason="PURPOSE_NOT_ALLOWED",requester="TAX",'
        r'service="nocr.person.verify.v1"\} [1-9]',
        r"exchange_pending_inquiries [0-9]",
        r'exchange_consumer_lag\{partition="0",topic="[^"]+\.out\.TAX"\} 0',
        r"exchange_engine_records_total [1-9]",
        r"exchange_engine_batch_seconds_count [1-9]",
    ]
    async with asyncio.timeout(20):  # lag is sampled every few seconds
        while True:
            text = await asyncio.to_thread(_scrape, url)
            if all(re.search(pattern, text) for pattern in wanted):
                return
            await asyncio.sleep(0.5)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()
