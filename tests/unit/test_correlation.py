"""The correlation state machine, one rule per test."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

import pytest

from exchange._correlation import INVALID_RESPONSE_CODE, Correlator
from exchange._events import (
    AuditEvent,
    AuditKind,
    Effect,
    ProviderError,
    RequestAccepted,
    RequestRejected,
    ResponseArrived,
    Restored,
    Route,
    Settlement,
    StateChange,
    Tick,
)
from exchange._models import RejectReason
from exchange._state import InquiryRecord, InquiryState, Phase, Settled

T = TypeVar("T")

T0 = 1_700_000_000_000
DEADLINE = T0 + 30_000
HOUR = 3_600_000
ID = "8f0d7c8e-9d7b-4c53-9a57-1e2f3a4b5c6d"


def inquiry(inquiry_id: str = ID, **changes: Any) -> InquiryRecord:
    fields: dict[str, Any] = {
        "inquiry_id": inquiry_id,
        "requester_agency": "TAX",
        "requester_subsystem": "registration",
        "provider_agency": "NOCR",
        "provider_subsystem": None,
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "purpose": "business-registration",
        "created_at_ms": T0 - 5,
        "deadline_ms": DEADLINE,
        "received_at_ms": T0,
    }
    return InquiryRecord(**(fields | changes))


def response(now_ms: int = T0 + 1_000, **changes: Any) -> ResponseArrived:
    fields: dict[str, Any] = {
        "inquiry_id": ID,
        "responder_agency": "NOCR",
        "service_code": "nocr.person.verify",
        "service_version": 1,
        "status": "FOUND",
        "answered_by": "AUTOMATIC",
        "responded_at_ms": now_ms - 2,
        "now_ms": now_ms,
        "payload": b"\xc3\x01answer",
    }
    return ResponseArrived(**(fields | changes))


def of_type(effects: list[Effect], kind: type[T]) -> list[T]:
    return [e for e in effects if isinstance(e, kind)]


def audit_kinds(effects: list[Effect]) -> list[AuditKind]:
    return [e.kind for e in of_type(effects, AuditEvent)]


def only_settlement(effects: list[Effect]) -> Settlement:
    (settlement,) = of_type(effects, Settlement)
    return settlement


def pending(correlator: Correlator | None = None) -> Correlator:
    correlator = correlator or Correlator(retention_ms=HOUR)
    correlator.handle(RequestAccepted(inquiry()))
    return correlator


# --- requests -----------------------------------------------------------------------------------


def test_accepted_request_is_routed_and_recorded_as_pending() -> None:
    """An accepted request yields a Route and a pending StateChange, and no outcome yet."""
    correlator = Correlator()
    effects = correlator.handle(RequestAccepted(inquiry()))
    assert effects == [Route(inquiry()), StateChange(ID, inquiry())]
    assert correlator.pending_count == 1
    assert correlator.next_due_ms() == DEADLINE


def test_an_accepted_request_read_after_its_deadline_times_out_unrouted() -> None:
    """Accepted (written in time) but read after its deadline: TIMED_OUT at once, with no
    Route, nothing left pending, and a later response recorded as late."""
    correlator = Correlator(retention_ms=HOUR)
    late = inquiry(received_at_ms=DEADLINE + 3)
    effects = correlator.handle(RequestAccepted(late))
    assert of_type(effects, Route) == []
    settlement = only_settlement(effects)
    assert (settlement.kind, settlement.settled_at_ms) == (Phase.TIMED_OUT, DEADLINE + 3)
    assert correlator.pending_count == 0
    assert of_type(correlator.tick(DEADLINE + 10_000), Settlement) == []


def test_duplicate_request_while_pending_is_not_routed_again() -> None:
    """The same inquiry id from the same agency while pending is audited, not routed."""
    correlator = pending()
    effects = correlator.handle(RequestAccepted(inquiry(received_at_ms=T0 + 7)))
    assert audit_kinds(effects) == [AuditKind.DUPLICATE_REQUEST]
    assert of_type(effects, Route) == []
    assert of_type(effects, Settlement) == []
    assert correlator.pending_count == 1


def test_duplicate_request_after_settling_is_not_routed_again() -> None:
    """A request for a settled, still remembered inquiry is audited as a duplicate."""
    correlator = pending()
    correlator.handle(response())
    effects = correlator.handle(RequestAccepted(inquiry(received_at_ms=T0 + 5_000)))
    assert effects == [
        AuditEvent(
            AuditKind.DUPLICATE_REQUEST,
            ID,
            T0 + 5_000,
            state=correlator.get(ID),
            request=inquiry(received_at_ms=T0 + 5_000),
        )
    ]


def test_rejected_request_settles_rejected_to_the_writing_agency() -> None:
    """A routing refusal is a REJECTED outcome for the agency whose topic it came from."""
    correlator = Correlator()
    spoofed = inquiry(requester_agency="BANK-MELLI")
    effects = correlator.handle(
        RequestRejected(spoofed, "TAX", RejectReason.WRONG_REQUESTER, "not you")
    )
    settlement = only_settlement(effects)
    assert (settlement.kind, settlement.deliver_to) == (Phase.REJECTED, "TAX")
    assert (settlement.reject_reason, settlement.detail) == (
        RejectReason.WRONG_REQUESTER,
        "not you",
    )
    assert of_type(effects, Route) == []
    assert audit_kinds(effects) == [AuditKind.SETTLED]
    state = correlator.get(ID)
    assert isinstance(state, Settled)
    assert (state.phase, state.requester_agency) == (Phase.REJECTED, "TAX")
    assert correlator.pending_count == 0


def test_rejected_inquiry_is_remembered_so_a_retry_is_a_duplicate() -> None:
    """A retried request after a rejection gets no second outcome, whatever routing says."""
    correlator = Correlator()
    correlator.handle(RequestRejected(inquiry(), "TAX", RejectReason.NOT_ALLOWED, "policy"))
    again = correlator.handle(RequestAccepted(inquiry(received_at_ms=T0 + 1)))
    assert audit_kinds(again) == [AuditKind.DUPLICATE_REQUEST]
    assert of_type(again, Settlement) == []
    assert of_type(again, Route) == []


def test_inquiry_id_taken_by_another_agency_is_rejected_to_that_agency_only() -> None:
    """An id reused by a different agency is refused to it; the first inquiry is untouched."""
    correlator = pending()
    intruder = inquiry(requester_agency="POLICE", received_at_ms=T0 + 3)
    effects = correlator.handle(RequestAccepted(intruder))
    settlement = only_settlement(effects)
    assert (settlement.kind, settlement.deliver_to) == (Phase.REJECTED, "POLICE")
    assert audit_kinds(effects) == [AuditKind.DUPLICATE_REQUEST]
    assert of_type(effects, StateChange) == []
    assert correlator.get(ID) == inquiry()


# --- responses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["FOUND", "NOT_FOUND"])
def test_provider_response_before_deadline_answers(status: str) -> None:
    """FOUND and NOT_FOUND from the provider settle ANSWERED with the payload, once."""
    correlator = pending()
    effects = correlator.handle(response(status=status))
    settlement = only_settlement(effects)
    assert settlement.kind == Phase.ANSWERED
    assert (settlement.status, settlement.answered_by) == (status, "AUTOMATIC")
    assert settlement.payload == b"\xc3\x01answer"
    assert (settlement.deliver_to, settlement.settled_at_ms) == ("TAX", T0 + 1_000)
    assert audit_kinds(effects) == [AuditKind.SETTLED]
    assert of_type(effects, StateChange) == [StateChange(ID, correlator.get(ID))]
    assert correlator.pending_count == 0


def test_provider_error_fails_the_inquiry() -> None:
    """An ERROR response settles FAILED and carries the provider's error."""
    correlator = pending()
    error = ProviderError("REGISTRY_DOWN", "try later", retriable=True)
    settlement = only_settlement(
        correlator.handle(response(status="ERROR", error=error, payload=None))
    )
    assert (settlement.kind, settlement.error) == (Phase.FAILED, error)


def test_invalid_response_fails_the_inquiry_without_its_payload() -> None:
    """A provider response that failed validation settles FAILED with INVALID_RESPONSE."""
    correlator = pending()
    settlement = only_settlement(correlator.handle(response(invalid="not a VerifyResponse")))
    assert settlement.kind == Phase.FAILED
    assert settlement.error == ProviderError(INVALID_RESPONSE_CODE, "not a VerifyResponse")
    assert settlement.payload is None


def test_response_for_another_service_fails_the_inquiry() -> None:
    """A response naming a different service (or version) than the inquiry is invalid."""
    correlator = pending()
    settlement = only_settlement(correlator.handle(response(service_version=2)))
    assert settlement.kind == Phase.FAILED
    assert settlement.error is not None
    assert settlement.error.code == INVALID_RESPONSE_CODE


def test_second_response_is_a_duplicate_without_a_second_outcome() -> None:
    """A repeated response after ANSWERED is audited DUPLICATE_RESPONSE, nothing else."""
    correlator = pending()
    correlator.handle(response())
    effects = correlator.handle(response(now_ms=T0 + 2_000))
    assert audit_kinds(effects) == [AuditKind.DUPLICATE_RESPONSE]
    assert len(effects) == 1


def test_foreign_response_is_ignored_and_the_inquiry_stays_pending() -> None:
    """A response from an agency other than the provider changes nothing."""
    correlator = pending()
    effects = correlator.handle(response(responder_agency="POLICE"))
    assert audit_kinds(effects) == [AuditKind.FOREIGN_RESPONSE]
    assert len(effects) == 1
    assert correlator.get(ID) == inquiry()
    assert only_settlement(correlator.handle(response())).kind == Phase.ANSWERED


def test_foreign_response_to_a_settled_inquiry_is_still_foreign() -> None:
    """Foreign wins over late/duplicate: the provider check comes first."""
    correlator = pending()
    correlator.handle(Tick(DEADLINE))
    effects = correlator.handle(response(now_ms=DEADLINE + 1, responder_agency="POLICE"))
    assert audit_kinds(effects) == [AuditKind.FOREIGN_RESPONSE]


def test_response_for_unknown_inquiry_is_audited_as_unknown() -> None:
    """A response whose id the table never held (or forgot) is UNKNOWN_RESPONSE."""
    effects = Correlator().handle(response())
    assert effects == [AuditEvent(AuditKind.UNKNOWN_RESPONSE, ID, T0 + 1_000, response=response())]


# --- timeouts -----------------------------------------------------------------------------------


def test_tick_at_the_deadline_times_out_exactly_once() -> None:
    """A tick at or after the deadline yields one TIMED_OUT; later ticks yield nothing more."""
    correlator = pending()
    assert correlator.handle(Tick(DEADLINE - 1)) == []
    effects = correlator.handle(Tick(DEADLINE))
    settlement = only_settlement(effects)
    assert (settlement.kind, settlement.settled_at_ms) == (Phase.TIMED_OUT, DEADLINE)
    assert audit_kinds(effects) == [AuditKind.SETTLED]
    assert of_type(correlator.handle(Tick(DEADLINE + 10_000)), Settlement) == []


def test_response_after_timeout_is_late_not_delivered() -> None:
    """A provider response after TIMED_OUT is audited LATE_RESPONSE, with no outcome."""
    correlator = pending()
    correlator.handle(Tick(DEADLINE + 5))
    effects = correlator.handle(response(now_ms=DEADLINE + 10))
    assert audit_kinds(effects) == [AuditKind.LATE_RESPONSE]
    assert len(effects) == 1


def test_response_read_at_the_deadline_before_any_tick_times_out_then_is_late() -> None:
    """Past the deadline the outcome is TIMED_OUT whether or not a tick ran first."""
    correlator = pending()
    effects = correlator.handle(response(now_ms=DEADLINE))
    assert only_settlement(effects).kind == Phase.TIMED_OUT
    assert audit_kinds(effects) == [AuditKind.SETTLED, AuditKind.LATE_RESPONSE]
    assert correlator.handle(Tick(DEADLINE + 1)) == []


def test_answered_inquiry_is_not_timed_out() -> None:
    """Settling cancels the deadline: a tick past it yields no outcome."""
    correlator = pending()
    correlator.handle(response())
    assert of_type(correlator.handle(Tick(DEADLINE + 1)), Settlement) == []


# --- retention ----------------------------------------------------------------------------------


def test_settled_inquiry_is_forgotten_after_retention_with_a_tombstone() -> None:
    """Retention after settling ends in a tombstone; the table no longer holds the id."""
    correlator = pending()
    correlator.handle(response(now_ms=T0 + 1_000))
    assert correlator.handle(Tick(T0 + 1_000 + HOUR - 1)) == []
    assert correlator.handle(Tick(T0 + 1_000 + HOUR)) == [StateChange(ID, None)]
    assert len(correlator) == 0
    assert audit_kinds(correlator.handle(response())) == [AuditKind.UNKNOWN_RESPONSE]


def test_timed_out_inquiry_retention_counts_from_the_timeout() -> None:
    """A timed-out inquiry is remembered for the retention period after it timed out."""
    correlator = pending()
    correlator.handle(Tick(DEADLINE))
    assert correlator.handle(Tick(DEADLINE + HOUR - 1)) == []
    assert correlator.handle(Tick(DEADLINE + HOUR)) == [StateChange(ID, None)]


def test_negative_retention_is_refused() -> None:
    """retention_ms < 0 is a programming error."""
    with pytest.raises(ValueError, match="retention_ms"):
        Correlator(retention_ms=-1)


# --- restore ------------------------------------------------------------------------------------


def test_restored_pending_inquiry_times_out_on_the_first_tick() -> None:
    """A pending entry replayed from the changelog gets its deadline timer back."""
    correlator = Correlator()
    assert correlator.handle(Restored(ID, inquiry())) == []
    assert correlator.pending_count == 1
    assert only_settlement(correlator.handle(Tick(DEADLINE + 60_000))).kind == Phase.TIMED_OUT


def test_restored_settled_inquiry_recognises_late_responses_and_expires() -> None:
    """A settled entry replayed from the changelog still catches late records, then expires."""
    correlator = Correlator(retention_ms=HOUR)
    correlator.handle(Restored(ID, inquiry().settle(Phase.TIMED_OUT, DEADLINE)))
    late = correlator.handle(response(now_ms=DEADLINE + 5))
    assert audit_kinds(late) == [AuditKind.LATE_RESPONSE]
    assert correlator.handle(Tick(DEADLINE + HOUR)) == [StateChange(ID, None)]


def test_later_changelog_records_override_earlier_ones() -> None:
    """Replaying pending then settled then a tombstone leaves nothing, and no timer."""
    correlator = Correlator()
    correlator.handle(Restored(ID, inquiry()))
    correlator.handle(Restored(ID, inquiry().settle(Phase.ANSWERED, T0 + 9)))
    assert correlator.pending_count == 0
    correlator.handle(Restored(ID, None))
    assert len(correlator) == 0
    assert correlator.next_due_ms() is None


def test_settled_record_replayed_twice_expires_once() -> None:
    """The same settled changelog record restored twice yields one tombstone at expiry."""
    correlator = Correlator(retention_ms=HOUR)
    mark = inquiry().settle(Phase.ANSWERED, T0)
    correlator.handle(Restored(ID, mark))
    correlator.handle(Restored(ID, mark))
    assert correlator.handle(Tick(T0 + HOUR)) == [StateChange(ID, None)]


def test_restored_tombstone_for_a_pending_entry_cancels_its_timeout() -> None:
    """A tombstone removes a pending entry and its deadline."""
    correlator = Correlator()
    correlator.handle(Restored(ID, inquiry()))
    correlator.handle(Restored(ID, None))
    assert correlator.pending_count == 0
    assert correlator.handle(Tick(DEADLINE)) == []


def test_correlator_works_on_a_table_it_is_given() -> None:
    """With table=, the correlator keeps its state in the engine's mapping, timers included."""
    table: dict[str, InquiryState] = {ID: inquiry()}
    correlator = Correlator(table=table)
    assert correlator.pending_count == 1
    effects = correlator.handle(Tick(DEADLINE))
    assert only_settlement(effects).kind == Phase.TIMED_OUT
    assert isinstance(table[ID], Settled)


def test_resync_after_a_rolled_back_settle_restores_the_deadline() -> None:
    """A table rolled back to pending (aborted transaction) times out again after resync()."""
    table: dict[str, InquiryState] = {}
    correlator = Correlator(table=table)
    correlator.handle(RequestAccepted(inquiry()))
    committed = dict(table)
    correlator.handle(response())
    table.clear()
    table.update(committed)  # what the engine's undo log does on abort
    correlator.resync()
    assert correlator.pending_count == 1
    assert only_settlement(correlator.handle(Tick(DEADLINE))).kind == Phase.TIMED_OUT


def test_resync_after_a_rolled_back_accept_forgets_the_deadline() -> None:
    """An accept rolled back leaves no timer behind to fire on a missing entry."""
    table: dict[str, InquiryState] = {}
    correlator = Correlator(table=table)
    correlator.handle(RequestAccepted(inquiry()))
    table.clear()
    correlator.resync()
    assert correlator.handle(Tick(DEADLINE)) == []
    assert correlator.next_due_ms() is None


def test_inquiry_interns_vocabulary_strings() -> None:
    """Agency and service strings are shared between inquiries, not copied per entry."""
    a = inquiry(provider_agency="".join(["NO", "CR"]))
    b = replace(inquiry("other"), provider_agency="".join(["N", "OCR"]))
    assert a.provider_agency is b.provider_agency
