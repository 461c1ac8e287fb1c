"""The bus processor without Kafka: records in, output records and state out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents._bus import BusProcessor
from agents._bus_codec import EnvelopeIO
from agents._engine import InputRecord, OutputRecord
from agents._state_store import PartitionState
from exchange._answer import AnswerStatus
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder, ServiceCache, decode_request, encode_response
from exchange._metrics import WorkerMetrics
from exchange._outcome import InquirySpec
from exchange._state import InquiryState
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD, HEADER_REPLY_TO, INQUIRY_OUTCOME, header_value

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
PERSON = {
    "national_id": "0012345678",
    "birth_date": dt.date(1990, 3, 21),
    "first_name": "Sara",
    "last_name": "Ahmadi",
}
VERDICT = {
    "national_id": "0012345678",
    "national_id_status": "VALID",
    "birth_date_match": True,
    "first_name_match": "EXACT",
    "last_name_match": "SIMILAR",
    "alive": True,
    "verified_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
}
NOW = 1_800_000_000.0
TOPICS = Topics("t")


class Bus:
    """A processor on one partition, a fake clock, and record builders."""

    def __init__(self) -> None:
        self.catalog = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
        self.codec = Codec(SchemaStore.from_directory(ROOT / "schemas"), max_record_bytes=8192)
        self.now = NOW
        self.registry = CollectorRegistry()
        existing = {
            TOPICS.audit: 1,
            TOPICS.dlq: 1,
            TOPICS.in_("NOCR"): 2,
            TOPICS.replies("TAX"): 2,
        }
        self.processor = BusProcessor(
            catalog=self.catalog,
            codec=self.codec,
            topics=TOPICS,
            topic_partitions=existing,
            metrics=WorkerMetrics(self.registry),
            clock=lambda: self.now,
        )
        self.state: PartitionState[InquiryState] = PartitionState(1)
        self.processor.on_assigned(self.state)
        # The writer has no size limit: a test writes an oversized request on purpose.
        unlimited = Codec(self.codec.store, max_record_bytes=2**20)
        self.encoder = RequestEncoder(self.catalog, unlimited, "TAX", "registration", reply_to="r1")
        self.offset = 0

    def request(self, deadline_s: float = 5.0, **payload: Any) -> InputRecord:
        deadline = dt.datetime.fromtimestamp(self.now + deadline_s, dt.UTC)
        spec = InquirySpec(VERIFY, {**PERSON, **payload}, "tax-registration", deadline=deadline)
        item = self.encoder.encode(spec)
        return self.record(TOPICS.out("TAX"), item.key, item.value, item.headers)

    def response(self, request: InputRecord, agency: str = "NOCR") -> InputRecord:
        assert request.value is not None
        received = decode_request(request.value, self.codec)
        schemas = ServiceCache(self.catalog, self.codec).get(VERIFY)
        value, headers = encode_response(
            self.codec,
            schemas,
            received,
            status=AnswerStatus.FOUND,
            payload=VERDICT,
            error=None,
            manual=False,
        )
        return self.record(TOPICS.out(agency), request.key, value, headers)

    def record(self, topic: str, key: bytes | None, value: bytes, headers: Any = ()) -> InputRecord:
        self.offset += 1
        return InputRecord(topic, 1, self.offset, 0, key, value, tuple(headers))

    def process(self, *records: InputRecord) -> list[OutputRecord]:
        outputs = self.processor.process(list(records), self.state)
        self.state.commit()  # what the engine does after the transaction commits
        return outputs

    def tick(self, at: float) -> list[OutputRecord]:
        self.now = at
        outputs = self.processor.on_tick(int(at * 1000), self.state)
        self.state.commit()
        return outputs

    def decode(self, output: OutputRecord, name: str) -> dict[str, Any]:
        assert output.value is not None
        return self.codec.decode(output.value, reader=name)


@pytest.fixture
def bus() -> Bus:
    """A fresh processor owning partition 1."""
    return Bus()


def _topics(outputs: list[OutputRecord]) -> list[str]:
    return [o.topic for o in outputs]


def test_an_accepted_request_is_forwarded_as_written_to_the_same_partition(bus: Bus) -> None:
    """The provider gets the requester's bytes and headers, on the input's partition."""
    request = bus.request()
    (routed,) = bus.process(request)
    assert (routed.topic, routed.partition) == (TOPICS.in_("NOCR"), 1)
    assert (routed.key, routed.value, routed.headers) == (
        request.key,
        request.value,
        request.headers,
    )


def test_a_response_settles_with_an_outcome_and_an_audit_record(bus: Bus) -> None:
    """ANSWERED goes to replies.<requester> with the reply-to header, and to the audit."""
    request = bus.request()
    bus.process(request)
    outcome, audit = bus.process(bus.response(request))
    assert (outcome.topic, outcome.partition, audit.topic) == (
        TOPICS.replies("TAX"),
        1,
        TOPICS.audit,
    )
    assert header_value(outcome.headers, HEADER_REPLY_TO) == b"r1"
    decoded = bus.decode(outcome, INQUIRY_OUTCOME)
    assert (decoded["kind"], decoded["status"], decoded["reply_to"]) == ("ANSWERED", "FOUND", "r1")
    assert bus.decode(audit, AUDIT_RECORD)["within_deadline"] is True


def test_a_refused_request_is_rejected_and_never_forwarded(bus: Bus) -> None:
    """A past deadline: REJECTED/DEADLINE_PAST to the requester, nothing to the provider."""
    outcome, _audit = bus.process(bus.request(deadline_s=-1))
    assert outcome.topic == TOPICS.replies("TAX")
    assert bus.decode(outcome, INQUIRY_OUTCOME)["reject_reason"] == "DEADLINE_PAST"


def test_undecodable_bytes_go_to_the_dlq_and_the_batch_goes_on(bus: Bus) -> None:
    """A bad record is dead-lettered unchanged; the good one after it is routed."""
    bad = bus.record(TOPICS.out("TAX"), b"k", b"\x00garbage")
    letter, routed = bus.process(bad, bus.request())
    assert (letter.topic, letter.key, letter.value) == (TOPICS.dlq, b"k", b"\x00garbage")
    assert routed.topic == TOPICS.in_("NOCR")


def test_an_oversized_request_is_dead_lettered_and_refused(bus: Bus) -> None:
    """Over the size limit: a dead letter, and PAYLOAD_TOO_LARGE so the writer knows."""
    big = bus.request(last_name="x" * 10_000)
    letter, outcome, _audit = bus.process(big)
    assert letter.topic == TOPICS.dlq
    assert bus.decode(outcome, INQUIRY_OUTCOME)["reject_reason"] == "PAYLOAD_TOO_LARGE"


def test_a_pending_inquiry_times_out_on_the_wall_clock(bus: Bus) -> None:
    """A tick past the deadline settles TIMED_OUT, once."""
    bus.process(bus.request(deadline_s=2))
    assert bus.tick(NOW + 1) == []
    outcome, _audit = bus.tick(NOW + 3)
    assert bus.decode(outcome, INQUIRY_OUTCOME)["kind"] == "TIMED_OUT"
    assert bus.tick(NOW + 4) == []


def test_a_rolled_back_settlement_still_times_out(bus: Bus) -> None:
    """After the engine rolls a settle back, the inquiry is pending again, with its timer."""
    request = bus.request(deadline_s=2)
    bus.process(request)
    bus.processor.process([bus.response(request)], bus.state)
    bus.state.rollback()  # the transaction failed: the engine restores the table
    outcome, _audit = bus.tick(NOW + 3)
    assert bus.decode(outcome, INQUIRY_OUTCOME)["kind"] == "TIMED_OUT"


def test_metrics_count_outcomes_and_pending(bus: Bus) -> None:
    """Settled inquiries by outcome, and the pending gauge, in the injected registry."""
    bus.process(bus.request())
    assert bus.registry.get_sample_value("exchange_pending_inquiries") == 1
    labels = {
        "requester": "TAX",
        "provider": "NOCR",
        "service": VERIFY,
        "outcome": "REJECTED",
    }
    bus.process(bus.request(deadline_s=-1))
    assert bus.registry.get_sample_value("exchange_inquiries_total", labels) == 1


def test_envelopes_are_read_without_logical_types(bus: Bus) -> None:
    """The hot path reads times as epoch milliseconds and ids as text, same values."""
    request = bus.request()
    assert request.value is not None
    _name, fields = EnvelopeIO(bus.codec).read(request.value)
    full = bus.codec.decode(request.value)
    assert fields["created_at"] == int(full["created_at"].timestamp() * 1000)
    assert fields["inquiry_id"] == str(full["inquiry_id"])


def test_a_provider_without_an_in_topic_gets_nothing_until_it_appears(bus: Bus) -> None:
    """No in topic: the request is dead-lettered (replayable); once it exists, it is routed."""
    topics = {TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.replies("TAX"): 2}
    bus.processor.set_topic_partitions(topics)
    (letter,) = bus.process(bus.request())
    assert (letter.topic, header_value(letter.headers, "exchange-dlq-reason")) == (
        TOPICS.dlq,
        b"no-such-topic",
    )
    bus.processor.set_topic_partitions({**topics, TOPICS.in_("NOCR"): 2})
    (routed,) = bus.process(bus.request())
    assert routed.topic == TOPICS.in_("NOCR")
