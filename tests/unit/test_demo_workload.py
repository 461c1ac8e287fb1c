"""The demo's workload and summary: the planned mix, and the counts a run is judged by."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from exchange import InquirySpec, Outcome, OutcomeKind
from exchange._catalog import Catalog, load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder
from exchange.demo._data import build_registers
from exchange.demo._summary import healthy, percentiles, summarize
from exchange.demo._tally import Reply, Sent, Tally
from exchange.demo._workload import Intent, Mix, plan_workload

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", SCHEMAS)


def test_workload_mixes_intents_in_the_planned_shares(catalog: Catalog) -> None:
    """2,000 inquiries: the deliberate mistakes in their shares, six services, reproducible."""
    registers = build_registers()
    workload = plan_workload(catalog, registers, 2_000, seed=3)
    intents = Counter(p.intent for p in workload.inquiries)
    mix = Mix()
    assert len(workload.inquiries) == 2_000
    assert intents[Intent.NOT_ALLOWED] == round(2_000 * mix.not_allowed)
    assert intents[Intent.WRONG_PURPOSE] == round(2_000 * mix.wrong_purpose)
    assert intents[Intent.INVALID_PAYLOAD] == round(2_000 * mix.invalid_payload)
    assert workload.garbage == round(2_000 * mix.garbage)
    assert len({p.service for p in workload.inquiries}) == 6
    assert plan_workload(catalog, registers, 2_000, seed=3) == workload


def test_intents_do_what_they_say_under_the_catalog(catalog: Catalog) -> None:
    """Allowed inquiries hold a policy and purpose; mistakes break exactly their rule."""
    workload = plan_workload(catalog, build_registers(), 1_000, seed=1)
    for planned in workload.inquiries:
        purposes = catalog.allowed_purposes(planned.agency, planned.subsystem, planned.service)
        if planned.intent is Intent.NOT_ALLOWED:
            assert not purposes
        elif planned.intent is Intent.WRONG_PURPOSE:
            assert purposes
            assert planned.purpose not in purposes
        else:
            assert planned.purpose in purposes
        if planned.intent is Intent.INVALID_PAYLOAD:
            assert planned.payload_service not in (None, planned.service)


def test_planned_payloads_pass_the_sdk(catalog: Catalog) -> None:
    """Every payload the clients send encodes; invalid ones fit the other service."""
    encoders: dict[str, RequestEncoder] = {}
    codec = Codec(SchemaStore.from_directory(SCHEMAS))
    for planned in plan_workload(catalog, build_registers(), 600, seed=2).inquiries:
        encoder = encoders.setdefault(
            planned.requester,
            RequestEncoder(catalog, codec, planned.agency, planned.subsystem, reply_to=None),
        )
        service = planned.payload_service or planned.service
        spec = InquirySpec(service, planned.payload, planned.purpose, subject=planned.subject)
        assert encoder.encode(spec).value


def test_percentiles_are_nearest_rank() -> None:
    """Each percentile is a sample that occurred; empty input gives None."""
    assert percentiles(range(1, 101)) == {"p50": 50, "p95": 95, "p99": 99}
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def _reply(kind: str, at: float = 1.0) -> Reply:
    return Reply(kind, "FOUND" if kind == "ANSWERED" else None, None, None, None, at)


def _outcome(inquiry_id: str, kind: OutcomeKind, *, local: bool = False) -> Outcome:
    return Outcome(uuid.UUID(inquiry_id), kind, "s.v1", "P", local=local, elapsed=0.5)


def _tally(kinds: list[str]) -> tuple[Tally, list[str]]:
    tally = Tally()
    ids = [str(uuid.uuid4()) for _ in kinds]
    for inquiry_id, kind in zip(ids, kinds, strict=True):
        tally.record_sent(inquiry_id, Sent("s.v1", "TAX", Intent.ASK, at=0.0))
        tally.record_reply(inquiry_id, _reply(kind))
        tally.record_client(_outcome(inquiry_id, OutcomeKind(kind)))
        tally.record_audit(inquiry_id, "SETTLED", kind)
    return tally, ids


def test_summary_counts_a_clean_run() -> None:
    """One outcome and one audit record each: nothing lost, no duplicate, audit agrees."""
    tally, _ids = _tally(["ANSWERED", "ANSWERED", "REJECTED", "FAILED", "TIMED_OUT"])
    summary = summarize(tally, providers={"s.v1": "P"})
    assert summary["outcomes"] == {"ANSWERED": 2, "REJECTED": 1, "FAILED": 1, "TIMED_OUT": 1}
    assert (summary["lost"], summary["duplicates"], summary["audit"]["agrees"]) == (0, 0, True)
    assert summary["latency_ms"]["p50"] == 500.0
    assert summary["by_service"]["s.v1"]["sent"] == 5
    assert tally.complete()
    assert healthy(summary)


def test_summary_sees_duplicates_losses_and_audit_gaps() -> None:
    """A second outcome record, a local timeout and a missing audit record are all caught."""
    tally, ids = _tally(["ANSWERED", "ANSWERED", "ANSWERED"])
    tally.record_reply(ids[0], _reply("ANSWERED", at=2.0))  # delivered twice
    tally.client[ids[1]] = _outcome(ids[1], OutcomeKind.TIMED_OUT, local=True)  # caller gave up
    tally.audit_records[ids[2]] += 1  # two SETTLED records for one inquiry
    lonely = str(uuid.uuid4())
    tally.record_sent(lonely, Sent("s.v1", "TAX", Intent.ASK, at=0.0))  # no outcome at all
    summary = summarize(tally, providers={})
    assert summary["duplicates"] == 1
    assert summary["lost"] == 2
    assert summary["audit"]["agrees"] is False
    assert not tally.complete()
    assert not healthy(summary)


def test_outcomes_of_other_runs_do_not_count() -> None:
    """Records on the replies topic for ids this run never sent are ignored."""
    tally, _ids = _tally(["ANSWERED"])
    tally.record_reply(str(uuid.uuid4()), _reply("FAILED"))
    assert summarize(tally, providers={})["outcomes"]["FAILED"] == 0
