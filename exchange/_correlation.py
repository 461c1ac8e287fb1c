"""The per-inquiry state machine: exactly one outcome for every inquiry on the bus.

::

    request ──accepted──▶ PENDING ──provider response before deadline──▶ ANSWERED / FAILED
       │                     └──────deadline reached (tick or late response)──▶ TIMED_OUT
       └──rejected by routing──▶ REJECTED
    settled ──retention ends (tick)──▶ forgotten (changelog tombstone)

Rules, each pinned by a test:

* A response from the inquiry's provider settles a pending inquiry once: ANSWERED for FOUND or
  NOT_FOUND, FAILED for ERROR or for a response that failed validation.
* A response read at or after the deadline times the inquiry out first, then counts as late,
  so the outcome never depends on whether a tick happened to run in between.
* A response for a settled inquiry is LATE (it timed out) or DUPLICATE (otherwise); one from
  any other agency is FOREIGN; one for an id the table does not hold is UNKNOWN (never seen,
  or forgotten after retention). All are audited and change nothing.
* A request whose id the table holds is not routed again: DUPLICATE_REQUEST. If a different
  agency wrote it, the id is taken: that agency gets a REJECTED outcome so it is not left
  waiting, and the table keeps the first inquiry.
* Settled inquiries are remembered for ``retention_ms`` after settling, then forgotten.

The machine is pure: time comes in with the events, effects go out as values. A worker keeps
one :class:`Correlator` per owned partition and drops it on revocation. On assignment it
either replays the changelog into a fresh one (:class:`~exchange._events.Restored` for every
record, in offset order) or hands it the already restored table (``table=``), then sends a
``Tick`` so that deadlines passed while nobody owned the partition fire at once.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from exchange._events import (
    AuditEvent,
    AuditKind,
    Effect,
    Event,
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
from exchange._timers import DeadlineIndex, ExpiryQueue

__all__ = ["DEFAULT_RETENTION_MS", "ID_TAKEN_REASON", "INVALID_RESPONSE_CODE", "Correlator"]

DEFAULT_RETENTION_MS = 3_600_000
#: Error code of the FAILED outcome a provider's invalid response turns into.
INVALID_RESPONSE_CODE = "INVALID_RESPONSE"
#: Reject reason for a request whose id another agency's inquiry already holds.
ID_TAKEN_REASON = RejectReason.OTHER


class Correlator:
    """The state table of one partition and the rules that change it."""

    __slots__ = ("_expiries", "_pending", "_retention_ms", "_table", "_timers")

    def __init__(
        self,
        *,
        retention_ms: int = DEFAULT_RETENTION_MS,
        table: MutableMapping[str, InquiryState] | None = None,
    ) -> None:
        """A correlator over *table* (a new dict by default).

        Pass the engine's own mapping (one that logs its changes to the changelog and can roll
        them back) to keep the state in one place; the correlator then only reads and writes
        it, and :meth:`resync` rebuilds its timers after the engine restored or rolled it back.
        """
        if retention_ms < 0:
            raise ValueError("retention_ms must not be negative")
        self._retention_ms = retention_ms
        self._table: MutableMapping[str, InquiryState] = {} if table is None else table
        # Deadlines of pending inquiries; settling cancels one, so they need the index.
        self._timers = DeadlineIndex()
        # When each settled inquiry settled; its entries share the int and the id with the
        # table entry, the cheapest way to remember many settled ids.
        self._expiries = ExpiryQueue()
        self._pending = 0
        self.resync()

    # --- queries --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._table)

    @property
    def pending_count(self) -> int:
        """Inquiries waiting for an answer (the pending gauge)."""
        return self._pending

    def get(self, inquiry_id: str) -> InquiryState | None:
        """The table entry for *inquiry_id*, if any."""
        return self._table.get(inquiry_id)

    def next_due_ms(self) -> int | None:
        """When the next deadline or expiry falls due, to sleep until then at most."""
        deadline, settled = self._timers.next_at(), self._expiries.next_at(self._settled_at)
        expiry = None if settled is None else settled + self._retention_ms
        if deadline is None or expiry is None:
            return expiry if deadline is None else deadline
        return min(deadline, expiry)

    def resync(self) -> None:
        """Rebuild timers and the pending count from the table, in O(n).

        Call it after the table changed behind the correlator's back: restored from the
        changelog by the engine, or rolled back to the last commit after a failed transaction
        (a rolled-back settle would otherwise leave a pending inquiry without its deadline).
        """
        self._timers = DeadlineIndex()
        self._pending = 0
        settled: list[tuple[int, str]] = []
        for inquiry_id, state in self._table.items():
            if isinstance(state, InquiryRecord):
                self._pending += 1
                self._timers.schedule(inquiry_id, state.deadline_ms)
            else:
                settled.append((state.settled_at_ms, inquiry_id))
        self._expiries = ExpiryQueue(settled)

    # --- events ---------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        """Apply one event; return the effects to write, in order."""
        match event:
            case RequestAccepted(inquiry):
                return self.accept(inquiry)
            case RequestRejected(inquiry, source, reason, detail):
                return self.reject(inquiry, source_agency=source, reason=reason, detail=detail)
            case ResponseArrived():
                return self.respond(event)
            case Tick(now_ms):
                return self.tick(now_ms)
            case Restored(inquiry_id, state):
                self.restore(inquiry_id, state)
                return []

    def accept(self, inquiry: InquiryRecord) -> list[Effect]:
        """Routing accepted *inquiry*: route it and wait for its answer, unless it is known."""
        known = self._table.get(inquiry.inquiry_id)
        if known is not None:
            reason, detail = ID_TAKEN_REASON, "the inquiry id is taken by another agency"
            return self._duplicate(inquiry, inquiry.requester_agency, known, reason, detail)
        if inquiry.deadline_ms <= inquiry.received_at_ms:
            # Written in time but read after its deadline (routing accepted it for that):
            # the provider could only answer late, so it times out now, unrouted.
            return self._time_out(inquiry, inquiry.received_at_ms)
        self._put(inquiry)
        return [Route(inquiry), StateChange(inquiry.inquiry_id, inquiry)]

    def reject(
        self, inquiry: InquiryRecord, *, source_agency: str, reason: RejectReason, detail: str
    ) -> list[Effect]:
        """Routing refused *inquiry*: settle it REJECTED, unless it is known."""
        known = self._table.get(inquiry.inquiry_id)
        if known is not None:
            return self._duplicate(inquiry, source_agency, known, reason, detail)
        now = inquiry.received_at_ms
        outcome = Settlement(
            inquiry, Phase.REJECTED, now, source_agency, reject_reason=reason, detail=detail
        )
        # Remember the writer, not the claim, so the writer's retries count as duplicates.
        settled = Settled(
            inquiry.inquiry_id,
            Phase.REJECTED,
            source_agency,
            inquiry.provider_agency,
            inquiry.service_code,
            inquiry.service_version,
            now,
        )
        return self._settled(settled, outcome)

    def respond(self, response: ResponseArrived) -> list[Effect]:
        """Correlate *response* with its inquiry."""
        known = self._table.get(response.inquiry_id)
        if known is None:
            return [self._noticed(AuditKind.UNKNOWN_RESPONSE, known, response)]
        if response.responder_agency != known.provider_agency:
            return [self._noticed(AuditKind.FOREIGN_RESPONSE, known, response)]
        if isinstance(known, Settled):
            timed_out = known.phase == Phase.TIMED_OUT
            kind = AuditKind.LATE_RESPONSE if timed_out else AuditKind.DUPLICATE_RESPONSE
            return [self._noticed(kind, known, response)]
        if response.now_ms >= known.deadline_ms:
            effects = self._time_out(known, response.now_ms)
            late = self._noticed(AuditKind.LATE_RESPONSE, self._table[known.inquiry_id], response)
            return [*effects, late]
        return self._answer(known, response)

    def tick(self, now_ms: int) -> list[Effect]:
        """Time out every pending inquiry past its deadline; forget expired settled ones."""
        effects: list[Effect] = []
        for inquiry_id in self._timers.due(now_ms):
            state = self._table[inquiry_id]
            assert isinstance(state, InquiryRecord), "only pending inquiries have deadlines"
            effects.extend(self._time_out(state, now_ms))
        for inquiry_id in self._expiries.pop_due(now_ms - self._retention_ms, self._settled_at):
            del self._table[inquiry_id]
            effects.append(StateChange(inquiry_id, None))
        return effects

    def restore(self, inquiry_id: str, state: InquiryState | None) -> None:
        """Replay one changelog record (None: a tombstone); emits nothing."""
        if state is not None:
            self._put(state)
        elif isinstance(self._table.pop(inquiry_id, None), InquiryRecord):
            self._pending -= 1
            self._timers.cancel(inquiry_id)

    # --- transitions ----------------------------------------------------------------------

    def _answer(self, inquiry: InquiryRecord, response: ResponseArrived) -> list[Effect]:
        invalid = response.invalid or _service_mismatch(inquiry, response)
        if invalid is not None:
            error: ProviderError | None = ProviderError(INVALID_RESPONSE_CODE, invalid)
            phase, payload = Phase.FAILED, None
        else:
            error, payload = response.error, response.payload
            phase = Phase.FAILED if response.status == "ERROR" else Phase.ANSWERED
        outcome = Settlement(
            inquiry,
            phase,
            response.now_ms,
            inquiry.requester_agency,
            status=response.status,
            answered_by=response.answered_by,
            responded_at_ms=response.responded_at_ms,
            error=error,
            payload=payload,
            detail=invalid,
        )
        return self._settled(inquiry.settle(phase, response.now_ms), outcome, response)

    def _time_out(self, inquiry: InquiryRecord, now_ms: int) -> list[Effect]:
        outcome = Settlement(inquiry, Phase.TIMED_OUT, now_ms, inquiry.requester_agency)
        return self._settled(inquiry.settle(Phase.TIMED_OUT, now_ms), outcome)

    def _settled(
        self, settled: Settled, outcome: Settlement, response: ResponseArrived | None = None
    ) -> list[Effect]:
        self._put(settled)
        audit = AuditEvent(
            AuditKind.SETTLED,
            settled.inquiry_id,
            settled.settled_at_ms,
            state=settled,
            settlement=outcome,
            response=response,
        )
        return [outcome, audit, StateChange(settled.inquiry_id, settled)]

    def _duplicate(
        self,
        request: InquiryRecord,
        source: str,
        known: InquiryState,
        reason: RejectReason,
        detail: str,
    ) -> list[Effect]:
        audit = AuditEvent(
            AuditKind.DUPLICATE_REQUEST,
            request.inquiry_id,
            request.received_at_ms,
            state=known,
            request=request,
        )
        if source == known.requester_agency:
            return [audit]
        # Another agency reused the id: refuse it (and tell it so) without touching the table.
        at = request.received_at_ms
        outcome = Settlement(
            request, Phase.REJECTED, at, source, reject_reason=reason, detail=detail
        )
        return [outcome, audit]

    def _noticed(
        self, kind: AuditKind, known: InquiryState | None, response: ResponseArrived
    ) -> AuditEvent:
        return AuditEvent(
            kind, response.inquiry_id, response.now_ms, state=known, response=response
        )

    def _put(self, state: InquiryState) -> None:
        was_pending = isinstance(self._table.get(state.inquiry_id), InquiryRecord)
        self._table[state.inquiry_id] = state
        if isinstance(state, InquiryRecord):
            self._pending += 0 if was_pending else 1
            self._timers.schedule(state.inquiry_id, state.deadline_ms)
        else:
            if was_pending:
                self._pending -= 1
                self._timers.cancel(state.inquiry_id)
            self._expiries.push(state.inquiry_id, state.settled_at_ms)

    def _settled_at(self, inquiry_id: str) -> int | None:
        state = self._table.get(inquiry_id)
        return state.settled_at_ms if isinstance(state, Settled) else None


def _service_mismatch(inquiry: InquiryRecord, response: ResponseArrived) -> str | None:
    asked = (inquiry.service_code, inquiry.service_version)
    if (response.service_code, response.service_version) == asked:
        return None
    return (
        f"the response is for {response.service_code}.v{response.service_version}, "
        f"the inquiry asked {inquiry.service_code}.v{inquiry.service_version}"
    )
