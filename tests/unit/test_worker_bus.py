"""The bus processor without Kafka: records in, output records and state out."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import fastavro
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from samples import PERSON, VERDICT

from agents._bus import BusProcessor
from agents._bus_codec import EnvelopeIO, raw_schema
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
from exchange._wire import (
    AUDIT_RECORD,
    HEADER_REPLY_TO,
    INQUIRY_OUTCOME,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    header_value,
)

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
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

    def fields(self, record: InputRecord) -> dict[str, Any]:
        """The envelope fields of ``record`` as the worker reads them (ids as text, ms)."""
        assert record.value is not None
        return EnvelopeIO(self.codec).read(record.value, limit=False)[1]

    def reencode(
        self, key: bytes | None, fields: dict[str, Any], name: str, headers: Any = ()
    ) -> InputRecord:
        """A record of ``fields`` written with envelope ``name``, unchecked, on its out topic."""
        schema = self.codec.store.get(name)
        out = io.BytesIO(schema.header)
        out.seek(0, io.SEEK_END)
        fastavro.schemaless_writer(out, raw_schema(schema), fields)
        agency = "TAX" if name == INQUIRY_REQUEST else "NOCR"
        return self.record(TOPICS.out(agency), key, out.getvalue(), headers)

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


def test_the_answer_mode_label_is_lower_case_like_the_providers(bus: Bus) -> None:
    """exchange_answers_total{mode} is automatic/manual, as exchange_provider_handled_total."""
    request = bus.request()
    bus.process(request)
    bus.process(bus.response(request))
    labels = {"provider": "NOCR", "service": VERIFY, "mode": "automatic"}
    assert bus.registry.get_sample_value("exchange_answers_total", labels) == 1


def test_envelopes_are_read_without_logical_types(bus: Bus) -> None:
    """The hot path reads times as epoch milliseconds and ids as text, same values."""
    request = bus.request()
    assert request.value is not None
    _name, fields = EnvelopeIO(bus.codec).read(request.value)
    full = bus.codec.decode(request.value)
    assert fields["created_at"] == int(full["created_at"].timestamp() * 1000)
    assert fields["inquiry_id"] == str(full["inquiry_id"])


def test_a_provider_without_an_in_topic_is_refused_until_it_appears(bus: Bus) -> None:
    """No in topic: REJECTED/UNKNOWN_AGENCY (one outcome, audited); once it exists, routed."""
    topics = {TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.replies("TAX"): 2}
    bus.processor.set_topic_partitions(topics)
    outcome, audit = bus.process(bus.request())
    decoded = bus.decode(outcome, INQUIRY_OUTCOME)
    assert (decoded["reject_reason"], audit.topic) == ("UNKNOWN_AGENCY", TOPICS.audit)
    assert "exchange topics apply" in decoded["detail"]
    bus.processor.set_topic_partitions({**topics, TOPICS.in_("NOCR"): 2})
    (routed,) = bus.process(bus.request())
    assert routed.topic == TOPICS.in_("NOCR")


def test_an_oversized_response_fails_its_inquiry_at_once(bus: Bus) -> None:
    """Over the size limit: dead-lettered, and the inquiry settles FAILED/INVALID_RESPONSE."""
    request = bus.request()
    bus.process(request)
    fields = bus.fields(bus.response(request))
    fields["error"] = {"code": "x", "message": "y" * 10_000, "retriable": False}
    letter, outcome, _audit = bus.process(bus.reencode(request.key, fields, INQUIRY_RESPONSE))
    assert letter.topic == TOPICS.dlq
    decoded = bus.decode(outcome, INQUIRY_OUTCOME)
    assert (decoded["kind"], decoded["error"]["code"]) == ("FAILED", "INVALID_RESPONSE")


def test_a_record_that_breaks_processing_is_dead_lettered_and_state_undone(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unforeseen error: processing-error dead letter (the error's type, never its text),
    no state change, and the batch goes on."""
    monkeypatch.setattr(bus.processor._io, "outcome", _explode)  # a defect, on purpose
    refused, good = bus.request(deadline_s=-1), bus.request()
    letter, routed = bus.process(refused, good)
    assert header_value(letter.headers, "exchange-dlq-reason") == b"processing-error"
    assert header_value(letter.headers, "exchange-dlq-message") == b"RuntimeError"
    assert routed.topic == TOPICS.in_("NOCR")
    assert list(bus.state) == [good.key.decode() if good.key else None]


def _explode(*_args: Any) -> bytes:
    raise RuntimeError("Sara Ahmadi 0012345678")


def test_a_reject_logs_its_detail_only_at_debug(bus: Bus) -> None:
    """The requester-written detail stays out of INFO lines; reason and service are there."""
    with structlog.testing.capture_logs() as logs:
        bus.process(bus.request(deadline_s=-1))
    (line,) = [entry for entry in logs if entry["event"] == "rejected"]
    assert (line["reason"], line["service"], "detail" in line) == ("DEADLINE_PAST", VERIFY, False)
    assert all("detail" not in entry for entry in logs if entry["log_level"] in {"info", "warning"})


# --- any text a writer can put in an envelope or a header -----------------------------------

REQUEST_TEXT = (
    ("inquiry_id",),
    ("requester", "agency"),
    ("requester", "subsystem"),
    ("provider", "agency"),
    ("provider", "subsystem"),
    ("service_code",),
    ("purpose",),
    ("case_reference",),
    ("end_user_id",),
    ("subject", "id"),
    ("trace_parent",),
    ("reply_to",),
)
RESPONSE_TEXT = (
    ("inquiry_id",),
    ("responder", "agency"),
    ("responder", "subsystem"),
    ("service_code",),
    ("error", "code"),
    ("error", "message"),
    ("trace_parent",),
)
HEADER_NAMES = ("exchange-reply-to", "traceparent", "exchange-inquiry-id", "exchange-type", "x")
texts = st.text(max_size=60)
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.binary(max_size=40)), max_size=3)


@given(
    path=st.sampled_from(REQUEST_TEXT),
    text=texts,
    key_follows=st.booleans(),
    extra=headers,
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_in_a_request_yields_exactly_one_result(
    path: tuple[str, ...], text: str, key_follows: bool, extra: list[tuple[str, bytes]]
) -> None:
    """Each request is routed, refused or dead-lettered, exactly once; nothing raises, and
    its deadline and expiry pass without raising."""
    bus = _fuzz_bus()
    request = bus.request()
    fields = _with_text(bus.fields(request), path, text)
    key = text.encode() if path == ("inquiry_id",) and key_follows else request.key
    record = bus.reencode(key, fields, INQUIRY_REQUEST, (*request.headers, *extra))
    outputs = bus.process(record)
    kinds = [_kind(o) for o in outputs if _kind(o) != "audit"]
    assert len(kinds) == 1, outputs
    ticked = bus.tick(NOW + 10) + bus.tick(NOW + 10 + 7200)
    assert [_kind(o) for o in ticked if _kind(o) != "audit"] == (
        ["outcome"] if kinds == ["routed"] else []
    )


@given(path=st.sampled_from(RESPONSE_TEXT), text=texts, extra=headers)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_in_a_response_leaves_exactly_one_outcome(
    path: tuple[str, ...], text: str, extra: list[tuple[str, bytes]]
) -> None:
    """A response with any text settles, is audited or is dead-lettered; its inquiry ends with
    exactly one outcome, and nothing raises."""
    bus = _fuzz_bus()
    request = bus.request()
    bus.process(request)
    response = bus.response(request)
    fields = _with_text(bus.fields(response), path, text)
    record = bus.reencode(response.key, fields, INQUIRY_RESPONSE, (*response.headers, *extra))
    kinds = [_kind(o) for o in bus.process(record)]
    assert kinds in (["outcome", "audit"], ["audit"], ["dlq"]), kinds
    ticked = [_kind(o) for o in bus.tick(NOW + 10) + bus.tick(NOW + 10 + 7200)]
    assert kinds.count("outcome") + ticked.count("outcome") == 1


_FUZZ_BUS: list[Bus] = []


def _fuzz_bus() -> Bus:
    """One processor for all examples (the catalog loads once), with a fresh table each."""
    if not _FUZZ_BUS:
        _FUZZ_BUS.append(Bus())
    bus = _FUZZ_BUS[0]
    bus.now = NOW
    bus.state = PartitionState(1)
    bus.processor.on_assigned(bus.state)
    return bus


def _with_text(fields: dict[str, Any], path: tuple[str, ...], text: str) -> dict[str, Any]:
    if path == ("subject", "id"):
        fields["subject"] = {"kind": "PERSON", "id": text}
    elif path[0] == "error":
        fields["error"] = {"code": "E", "message": "m", "retriable": False, path[1]: text}
    elif len(path) == 2:
        fields[path[0]] = {**fields[path[0]], path[1]: text}
    else:
        fields[path[0]] = text
    return fields


def _kind(output: OutputRecord) -> str:
    kinds = {TOPICS.audit: "audit", TOPICS.dlq: "dlq", TOPICS.in_("NOCR"): "routed"}
    return kinds.get(output.topic, "outcome")
