"""The client's in-flight table and the SDK's value checks (no broker)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from exchange._answer import Answer
from exchange._desk import manual_answer
from exchange._errors import (
    BrokerError,
    InquiryError,
    InquiryFailedError,
    InquiryRejectedError,
    InquiryTimeoutError,
)
from exchange._outcome import Outcome, OutcomeKind
from exchange._replies import InFlight


def _outcome(inquiry_id: uuid.UUID, kind: OutcomeKind = OutcomeKind.ANSWERED) -> Outcome:
    return Outcome(inquiry_id=inquiry_id, kind=kind, service="s.v1", provider="NOCR")


async def test_outcome_reaches_its_waiting_caller() -> None:
    """settle() resolves the future of the matching inquiry and empties the table."""
    table = InFlight()
    inquiry_id = uuid.uuid4()
    future = table.expect(inquiry_id, "s.v1", "NOCR", timeout=5.0)
    assert table.settle(str(inquiry_id), _outcome(inquiry_id))
    assert (await future).kind is OutcomeKind.ANSWERED
    assert len(table) == 0


async def test_unknown_outcome_is_counted_late() -> None:
    """An outcome nobody waits for is dropped and counted."""
    table = InFlight()
    inquiry_id = uuid.uuid4()
    assert not table.settle(str(inquiry_id), _outcome(inquiry_id))
    assert table.late == 1


async def test_timeout_settles_locally_and_a_later_outcome_is_late() -> None:
    """The timer settles TIMED_OUT (local); the bus's outcome after it counts as late."""
    table = InFlight()
    inquiry_id = uuid.uuid4()
    outcome = await table.expect(inquiry_id, "s.v1", "NOCR", timeout=0.01)
    assert outcome.kind is OutcomeKind.TIMED_OUT
    assert outcome.local
    assert not table.settle(str(inquiry_id), _outcome(inquiry_id))
    assert table.late == 1


async def test_streamed_outcomes_are_queued() -> None:
    """Inquiries sent without a waiting caller deliver to next_streamed()."""
    table = InFlight()
    inquiry_id = uuid.uuid4()
    table.expect_streamed(inquiry_id, "s.v1", "NOCR", timeout=None)
    table.settle(str(inquiry_id), _outcome(inquiry_id))
    assert (await asyncio.wait_for(table.next_streamed(), 1.0)).inquiry_id == inquiry_id


async def test_fail_all_reaches_every_caller() -> None:
    """Closing the client fails every waiting caller with the given error."""
    table = InFlight()
    futures = [table.expect(uuid.uuid4(), "s.v1", "NOCR", timeout=5.0) for _ in range(3)]
    table.fail_all(BrokerError("closed"))
    for future in futures:
        with pytest.raises(BrokerError):
            await future
    assert len(table) == 0


def test_raise_for_kind_maps_each_kind_to_its_error() -> None:
    """ANSWERED returns itself; the other kinds raise their InquiryError subclass."""
    inquiry_id = uuid.uuid4()
    answered = _outcome(inquiry_id)
    assert answered.raise_for_kind() is answered
    with pytest.raises(InquiryTimeoutError):
        _outcome(inquiry_id, OutcomeKind.TIMED_OUT).raise_for_kind()
    with pytest.raises(InquiryFailedError):
        _outcome(inquiry_id, OutcomeKind.FAILED).raise_for_kind()
    with pytest.raises(InquiryRejectedError):
        _outcome(inquiry_id, OutcomeKind.REJECTED).raise_for_kind()


def test_manual_answers_are_checked_before_anything_is_sent() -> None:
    """FOUND needs a payload; unknown and DEFERRED statuses are refused; ERROR keeps its code."""
    assert manual_answer("NOT_FOUND") == Answer.not_found()
    assert manual_answer("ERROR", error_code="RECORD_SEALED").error_code == "RECORD_SEALED"
    assert manual_answer("FOUND", {"a": 1}).payload == {"a": 1}
    for status, payload in (("FOUND", None), ("MAYBE", None), ("DEFERRED", None)):
        with pytest.raises(InquiryError):
            manual_answer(status, payload)
