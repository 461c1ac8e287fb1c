"""The worker's audit chain without Kafka: linked records, head in state, rollback."""

from __future__ import annotations

import pytest
from test_worker_bus import NOW, TOPICS, Bus

from agents._bus import AUDIT_HEAD_KEY, BusProcessor
from agents._engine import OutputRecord
from agents._state_store import PartitionState
from exchange._audit_chain import GENESIS, chain_id, verify_trail
from exchange._audit_io import AuditDecoder, AuditEntry
from exchange._state import InquiryState


@pytest.fixture
def bus() -> Bus:
    """A fresh processor owning partition 1."""
    return Bus()


def _audits(outputs: list[OutputRecord]) -> list[OutputRecord]:
    return [o for o in outputs if o.topic == TOPICS.audit]


def _verify(bus: Bus, audits: list[OutputRecord]) -> list[tuple[int, str]]:
    decoder = AuditDecoder(bus.codec.store)
    entries = [
        AuditEntry(o.partition or 0, n, o.headers, o.value or b"", decoder.decode(o.value or b""))
        for n, o in enumerate(audits)
    ]
    reports = verify_trail(entry.trail_record() for entry in entries)
    return [(p.offset, p.kind) for report in reports for p in report.problems]


def test_audit_records_chain_across_batches_and_ticks(bus: Bus) -> None:
    """Answered, rejected and timed-out inquiries' audit records form one valid chain."""
    audits: list[OutputRecord] = []
    answered = bus.request()
    audits += _audits(bus.process(answered, bus.request(deadline_s=-1)))
    audits += _audits(bus.process(bus.response(answered), bus.request(deadline_s=2)))
    audits += _audits(bus.tick(NOW + 3))
    assert len(audits) == 3
    assert {chain_id(a.headers) for a in audits} == {1}
    assert _verify(bus, audits) == []
    first = AuditDecoder(bus.codec.store).decode(audits[0].value or b"")
    assert first["prev_hash"] == GENESIS


def test_the_head_lives_in_state_so_a_new_owner_goes_on(bus: Bus) -> None:
    """A processor assigned the restored state continues the chain where it stopped."""
    audits = _audits(bus.process(bus.request(deadline_s=-1)))
    restored: PartitionState[InquiryState] = PartitionState(1, dict(bus.state.items()))
    bus.processor = other = BusProcessor(
        catalog=bus.catalog,
        codec=bus.codec,
        topics=TOPICS,
        topic_partitions={TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.in_("NOCR"): 2},
        clock=lambda: bus.now,
    )
    bus.state = restored
    other.on_assigned(restored)
    audits += _audits(bus.process(bus.request(deadline_s=-1)))
    assert len(audits) == 2
    assert _verify(bus, audits) == []


def test_an_aborted_batch_rolls_the_head_back_with_its_records(bus: Bus) -> None:
    """Records of a rolled-back transaction never reach the topic; the chain skips them."""
    audits = _audits(bus.process(bus.request(deadline_s=-1)))
    bus.processor.process([bus.request(deadline_s=-1)], bus.state)  # written, then aborted
    bus.state.rollback()
    audits += _audits(bus.process(bus.request(deadline_s=-1)))
    assert _verify(bus, audits) == []


def test_the_head_is_not_an_inquiry(bus: Bus) -> None:
    """The chain's entry is no pending inquiry and a record cannot claim its id."""
    bus.process(bus.request(deadline_s=-1))
    assert AUDIT_HEAD_KEY in bus.state
    assert bus.registry.get_sample_value("exchange_pending_inquiries") == 0
    request = bus.request()
    fields = bus.fields(request)
    fields["inquiry_id"] = AUDIT_HEAD_KEY
    forged = bus.reencode(request.key, fields, "exchange.v1.InquiryRequest", request.headers)
    outputs = bus.process(forged)
    assert [o.topic for o in outputs] == [TOPICS.dlq]
