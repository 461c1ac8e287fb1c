"""Swapping the catalog of a running bus processor (BusProcessor.use_catalog), without Kafka."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from samples import PERSON, VERDICT

from agents._bus import BusProcessor
from agents._engine import InputRecord, OutputRecord
from agents._state_store import PartitionState
from exchange._answer import AnswerStatus
from exchange._catalog import load_catalog
from exchange._catalog_model import Catalog, Policy
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder, ServiceCache, decode_request, encode_response
from exchange._metrics import WorkerMetrics
from exchange._outcome import InquirySpec
from exchange._state import InquiryState
from exchange._topology import Topics
from exchange._wire import INQUIRY_OUTCOME

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
NOW = 1_800_000_000.0
TOPICS = Topics("t")
DEMO = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
STORE = SchemaStore.from_directory(ROOT / "schemas")


class Bus:
    """One partition of a processor started on the demo catalog, with record builders."""

    def __init__(self) -> None:
        self.codec = Codec(STORE, max_record_bytes=8192)
        self.registry = CollectorRegistry()
        existing = {TOPICS.audit: 1, TOPICS.dlq: 1, TOPICS.in_("NOCR"): 2, TOPICS.replies("TAX"): 2}
        self.processor = BusProcessor(
            catalog=DEMO,
            codec=self.codec,
            topics=TOPICS,
            topic_partitions=existing,
            metrics=WorkerMetrics(self.registry),
            clock=lambda: NOW,
        )
        self.state: PartitionState[InquiryState] = PartitionState(1)
        self.processor.on_assigned(self.state)
        self.encoder = RequestEncoder(DEMO, self.codec, "TAX", "registration", reply_to="r1")
        self.offset = 0

    def request(self, purpose: str = "tax-registration") -> InputRecord:
        deadline = dt.datetime.fromtimestamp(NOW + 5, dt.UTC)
        item = self.encoder.encode(InquirySpec(VERIFY, PERSON, purpose, deadline=deadline))
        return self._record(TOPICS.out("TAX"), item.key, item.value, item.headers)

    def response(self, request: InputRecord) -> InputRecord:
        assert request.value is not None
        schemas = ServiceCache(DEMO, self.codec).get(VERIFY)
        value, headers = encode_response(
            self.codec,
            schemas,
            decode_request(request.value, self.codec),
            status=AnswerStatus.FOUND,
            payload=VERDICT,
            error=None,
            manual=False,
        )
        return self._record(TOPICS.out("NOCR"), request.key, value, headers)

    def _record(self, topic: str, key: Any, value: Any, headers: Any) -> InputRecord:
        self.offset += 1
        return InputRecord(topic, 1, self.offset, 0, key, value, tuple(headers))

    def process(self, record: InputRecord) -> list[OutputRecord]:
        outputs = self.processor.process([record], self.state)
        self.state.commit()
        return outputs

    def outcome(self, outputs: list[OutputRecord]) -> dict[str, Any]:
        (reply,) = [o for o in outputs if o.topic == TOPICS.replies("TAX")]
        assert reply.value is not None
        return self.codec.decode(reply.value, reader=INQUIRY_OUTCOME)

    def settled(self, outcome: str) -> float | None:
        labels = {"requester": "TAX", "provider": "NOCR", "service": VERIFY, "outcome": outcome}
        return self.registry.get_sample_value("exchange_inquiries_total", labels)


@pytest.fixture
def bus() -> Bus:
    """A fresh processor on the demo catalog."""
    return Bus()


def _granting(catalog: Catalog, purpose: str) -> Catalog:
    """``catalog`` with ``purpose`` added to TAX/registration's policy for VERIFY."""

    def policy(p: Policy) -> Policy:
        if (p.requester_ref, p.service) != ("TAX/registration", VERIFY):
            return p
        extra = p.purposes[0].model_copy(update={"code": purpose})
        return p.model_copy(update={"purposes": (*p.purposes, extra)})

    policies = tuple(policy(p) for p in catalog.policies)
    return Catalog(agencies=catalog.agencies, services=catalog.services, policies=policies)


def _without_verify(*also: str) -> tuple[Catalog, Codec]:
    """The demo catalog without VERIFY (and ``also``), their policies and schemas gone too."""
    gone = {VERIFY, *also}
    catalog = Catalog(
        agencies=DEMO.agencies,
        services=tuple(s for s in DEMO.services if s.id not in gone),
        policies=tuple(p for p in DEMO.policies if p.service not in gone),
    )
    store = SchemaStore(s for s in STORE if not any(sid in (s.source or "") for sid in gone))
    return catalog, Codec(store, max_record_bytes=8192)


def test_a_purpose_granted_by_a_new_catalog_is_routed_from_the_next_batch(bus: Bus) -> None:
    """Before the swap the purpose is refused; after it the same inquiry goes to the provider."""
    refused = bus.outcome(bus.process(bus.request("tax-audit")))
    assert (refused["kind"], refused["reject_reason"]) == ("REJECTED", "PURPOSE_NOT_ALLOWED")
    bus.processor.use_catalog(_granting(DEMO, "tax-audit"), Codec(STORE, max_record_bytes=8192))
    (routed,) = bus.process(bus.request("tax-audit"))
    assert routed.topic == TOPICS.in_("NOCR")


def test_pending_inquiries_survive_a_swap_and_settle(bus: Bus) -> None:
    """An inquiry routed before the swap is answered after it: its state was kept."""
    request = bus.request()
    bus.process(request)
    bus.processor.use_catalog(_granting(DEMO, "tax-audit"), Codec(STORE, max_record_bytes=8192))
    assert bus.outcome(bus.process(bus.response(request)))["kind"] == "ANSWERED"


def test_a_removed_service_still_settles_its_pending_inquiries_as_answered(bus: Bus) -> None:
    """Responses for a service the new catalog dropped (schemas included) are still checked
    against the service as it was, so the requester gets the answer, counted under the
    service's own label; new requests for it are refused."""
    request = bus.request()
    (routed,) = bus.process(request)
    assert routed.topic == TOPICS.in_("NOCR")
    bus.processor.use_catalog(*_without_verify())
    outcome = bus.outcome(bus.process(bus.response(request)))
    assert (outcome["kind"], outcome["status"]) == ("ANSWERED", "FOUND")
    assert outcome["payload"] is not None
    assert bus.settled("ANSWERED") == 1
    refused = bus.outcome(bus.process(bus.request()))
    assert refused["reject_reason"] == "UNKNOWN_SERVICE"


def test_a_removed_service_is_remembered_across_later_swaps(bus: Bus) -> None:
    """A second catalog change (still without the service) keeps its pending inquiries
    answerable: retired services and their schemas carry over."""
    request = bus.request()
    bus.process(request)
    bus.processor.use_catalog(*_without_verify())
    bus.processor.use_catalog(*_without_verify("post.address.lookup.v1"))
    assert bus.outcome(bus.process(bus.response(request)))["kind"] == "ANSWERED"


def test_a_service_back_in_the_catalog_follows_its_new_definition(bus: Bus) -> None:
    """Removed, then published again: requests for it are routed again."""
    bus.processor.use_catalog(*_without_verify())
    bus.processor.use_catalog(DEMO, Codec(STORE, max_record_bytes=8192))
    (routed,) = bus.process(bus.request())
    assert routed.topic == TOPICS.in_("NOCR")


def test_a_catalog_that_cannot_be_used_leaves_the_current_one(bus: Bus) -> None:
    """A store without the envelope schemas fails before anything is swapped."""
    with pytest.raises(Exception, match="no schema named"):
        bus.processor.use_catalog(DEMO, Codec(SchemaStore(), max_record_bytes=8192))
    (routed,) = bus.process(bus.request())
    assert routed.topic == TOPICS.in_("NOCR")
