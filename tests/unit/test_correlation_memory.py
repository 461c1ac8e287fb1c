"""Memory per table entry, so 100,000 pending inquiries fit well inside the worker's budget.

Measured with tracemalloc over realistic values (distinct ids, case references, subject ids
and trace contexts; shared agency, service and purpose vocabulary). The bounds leave about
20 % headroom over the figures measured when they were set (~790 B pending, ~310 B settled).
"""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from collections.abc import Callable

from exchange._correlation import Correlator
from exchange._events import ResponseArrived
from exchange._state import InquiryRecord

N = 5_000
T0 = 1_700_000_000_000


def realistic(i: int) -> InquiryRecord:
    # Vocabulary strings built fresh each time, as a decoder would, to prove interning works.
    return InquiryRecord(
        inquiry_id=str(uuid.uuid4()),
        requester_agency="".join(["T", "AX"]),
        requester_subsystem="".join(["registr", "ation"]),
        provider_agency="".join(["NO", "CR"]),
        provider_subsystem=None,
        service_code="".join(["nocr.person.", "verify"]),
        service_version=1,
        purpose="".join(["business-", "registration"]),
        created_at_ms=T0 + i,
        deadline_ms=T0 + i + 30_000,
        received_at_ms=T0 + i + 3,
        case_reference=f"CASE-2026-{i:08d}",
        end_user_id=f"clerk-{i % 500:04d}",
        subject_kind="".join(["PER", "SON"]),
        subject_id=f"{i:010d}",
        reply_to="".join(["tax-worker-", "1"]),
        trace_parent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    )


def bytes_per_entry(fill: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = fill()
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del keep
    return used / N


def test_pending_entry_costs_under_a_kilobyte() -> None:
    """A pending inquiry (record, strings, table slot, deadline timer) stays under 950 B."""

    def fill() -> Correlator:
        correlator = Correlator()
        for i in range(N):
            correlator.accept(realistic(i))
        return correlator

    assert bytes_per_entry(fill) < 950


def test_settled_entry_costs_under_400_bytes() -> None:
    """A settled inquiry remembered for retention (mark, id, slot, expiry) stays under 400 B."""

    def fill() -> Correlator:
        correlator = Correlator()
        for i in range(N):
            record = realistic(i)
            correlator.accept(record)
            now = T0 + i + 100
            arrived = ResponseArrived(
                record.inquiry_id, "NOCR", "nocr.person.verify", 1, "FOUND", "AUTOMATIC", now, now
            )
            correlator.respond(arrived)
        return correlator

    assert bytes_per_entry(fill) < 400
