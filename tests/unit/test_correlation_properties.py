"""Property-based tests: any interleaving of records, ticks and restarts, one right outcome each.

A hypothesis state machine drives a :class:`Correlator` with requests (accepted or rejected),
duplicate requests, responses from the provider or a foreign agency, duplicate and late
responses, wall-clock ticks at arbitrary times, and restarts (the changelog written so far
replayed into a fresh correlator, or rebuilt as a table and handed over). Two checks run throughout:

* a per-inquiry protocol: routed → settled → forgotten, with no second route or outcome in
  between (a REJECTED outcome opens and closes a life at once);
* an oracle written from the rule itself: the outcome is ANSWERED / FAILED when a provider
  response arrived before the deadline and before any timeout tick, TIMED_OUT otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from exchange._changelog import decode_state
from exchange._correlation import Correlator
from exchange._events import (
    AuditEvent,
    AuditKind,
    Effect,
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
from exchange._state import InquiryRecord, InquiryState, Phase

IDS = st.sampled_from(["inq-a", "inq-b"])
STATUSES = st.sampled_from(["FOUND", "NOT_FOUND", "ERROR"])
DT = st.integers(min_value=0, max_value=40)


def record(inquiry_id: str, now: int, deadline: int) -> InquiryRecord:
    return InquiryRecord(
        inquiry_id=inquiry_id,
        requester_agency="TAX",
        requester_subsystem=None,
        provider_agency="NOCR",
        provider_subsystem=None,
        service_code="nocr.person.verify",
        service_version=1,
        purpose="business-registration",
        created_at_ms=now,
        deadline_ms=deadline,
        received_at_ms=now,
    )


class CorrelationMachine(RuleBasedStateMachine):
    """Drives one partition's correlator; checks the protocol and the oracle."""

    retention_ms: ClassVar[int] = 10**12  # never expires: one life per inquiry id

    def __init__(self) -> None:
        super().__init__()
        self.correlator = Correlator(retention_ms=self.retention_ms)
        self.changelog: list[tuple[str, bytes | None]] = []
        self.now = 0
        self.life: dict[str, str] = defaultdict(lambda: "idle")
        self.settlements: dict[str, list[Settlement]] = defaultdict(list)
        self.deadline: dict[str, int] = {}
        self.expected: dict[str, tuple[Phase, bytes | None] | None] = {}
        self.responses = 0

    # --- plumbing ---------------------------------------------------------------------------

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Route(inquiry):
                    self.step(inquiry.inquiry_id, "idle", "open")
                case Settlement(inquiry, kind):
                    before = "idle" if kind == Phase.REJECTED else "open"
                    self.step(inquiry.inquiry_id, before, "settled")
                    self.settlements[inquiry.inquiry_id].append(effect)
                case StateChange(inquiry_id, state):
                    self.changelog.append((inquiry_id, effect.value()))
                    if state is None:
                        self.step(inquiry_id, "settled", "idle")

    def step(self, inquiry_id: str, before: str, after: str) -> None:
        assert self.life[inquiry_id] == before, f"{inquiry_id}: {self.life[inquiry_id]}→{after}"
        self.life[inquiry_id] = after

    def oracle_tick(self) -> None:
        for inquiry_id, expected in self.expected.items():
            if expected is None and self.deadline[inquiry_id] <= self.now:
                self.expected[inquiry_id] = (Phase.TIMED_OUT, None)

    # --- rules ------------------------------------------------------------------------------

    @rule(dt=DT)
    def advance(self, dt: int) -> None:
        self.now += dt

    @rule(inquiry_id=IDS, within=st.integers(min_value=1, max_value=50), accepted=st.booleans())
    def request(self, inquiry_id: str, within: int, accepted: bool) -> None:
        inquiry = record(inquiry_id, self.now, self.now + within)
        remembered = self.correlator.get(inquiry_id) is not None
        if accepted:
            effects = self.correlator.handle(RequestAccepted(inquiry))
        else:
            rejected = RequestRejected(inquiry, "TAX", RejectReason.NOT_ALLOWED, "policy")
            effects = self.correlator.handle(rejected)
        if self.retention_ms == CorrelationMachine.retention_ms:
            assert remembered == (inquiry_id in self.deadline)
        if remembered:
            (audit,) = effects
            assert isinstance(audit, AuditEvent)
            assert audit.kind == AuditKind.DUPLICATE_REQUEST
        self.apply(effects)
        if inquiry_id not in self.deadline:
            self.deadline[inquiry_id] = self.now + within
            self.expected[inquiry_id] = None if accepted else (Phase.REJECTED, None)

    @rule(inquiry_id=IDS, from_provider=st.booleans(), status=STATUSES, dt=DT)
    def respond(self, inquiry_id: str, from_provider: bool, status: str, dt: int) -> None:
        self.now += dt
        self.responses += 1
        payload = f"{status}#{self.responses}".encode()
        arrived = ResponseArrived(
            inquiry_id=inquiry_id,
            responder_agency="NOCR" if from_provider else "POLICE",
            service_code="nocr.person.verify",
            service_version=1,
            status=status,
            answered_by="AUTOMATIC",
            responded_at_ms=self.now,
            now_ms=self.now,
            payload=payload,
        )
        effects = self.correlator.handle(arrived)
        # Every response is accounted for exactly once: it settled, or it was noticed.
        assert sum(isinstance(e, AuditEvent) and e.response is arrived for e in effects) == 1
        self.apply(effects)
        if from_provider and inquiry_id in self.expected and self.expected[inquiry_id] is None:
            if self.now < self.deadline[inquiry_id]:
                kind = Phase.FAILED if status == "ERROR" else Phase.ANSWERED
                self.expected[inquiry_id] = (kind, payload)
            else:
                self.expected[inquiry_id] = (Phase.TIMED_OUT, None)

    @rule()
    def tick(self) -> None:
        self.apply(self.correlator.handle(Tick(self.now)))
        self.oracle_tick()

    @rule(tick_after=st.booleans(), engine_restores=st.booleans())
    def restart(self, tick_after: bool, engine_restores: bool) -> None:
        if engine_restores:  # the engine rebuilt the table itself and hands it over
            table: dict[str, InquiryState] = {}
            for inquiry_id, value in self.changelog:
                if value is None:
                    table.pop(inquiry_id, None)
                else:
                    table[inquiry_id] = decode_state(value)
            fresh = Correlator(retention_ms=self.retention_ms, table=table)
        else:  # the correlator replays the changelog
            fresh = Correlator(retention_ms=self.retention_ms)
            for inquiry_id, value in self.changelog:
                state = None if value is None else decode_state(value)
                assert fresh.handle(Restored(inquiry_id, state)) == []
        for inquiry_id in ("inq-a", "inq-b"):
            assert fresh.get(inquiry_id) == self.correlator.get(inquiry_id)
        assert fresh.pending_count == self.correlator.pending_count
        assert fresh.next_due_ms() == self.correlator.next_due_ms()
        self.correlator = fresh
        if tick_after:
            self.tick()

    # --- the end ----------------------------------------------------------------------------

    def teardown(self) -> None:
        self.now += 1_000
        self.tick()
        for inquiry_id, expected in self.expected.items():
            assert expected is not None
            self.check(inquiry_id, expected)
        assert set(self.settlements) <= set(self.expected)

    def check(self, inquiry_id: str, expected: tuple[Phase, bytes | None]) -> None:
        settlements = self.settlements[inquiry_id]
        assert len(settlements) == 1, f"{inquiry_id} settled {len(settlements)} times"
        kind, payload = expected
        assert settlements[0].kind == kind
        if kind in (Phase.ANSWERED, Phase.FAILED):
            assert settlements[0].payload == payload


class ExpiringCorrelationMachine(CorrelationMachine):
    """Short retention: ids are forgotten and reused; the protocol must still hold."""

    retention_ms: ClassVar[int] = 25

    def teardown(self) -> None:
        self.now += 1_000
        self.tick()
        assert all(state != "open" for state in self.life.values())
        for inquiry_id, trace in self.settlements.items():
            assert len(trace) >= 1, inquiry_id


TestCorrelationProperties = CorrelationMachine.TestCase
TestCorrelationProperties.settings = settings(max_examples=150, stateful_step_count=40)
TestExpiringCorrelation = ExpiringCorrelationMachine.TestCase
TestExpiringCorrelation.settings = settings(max_examples=100, stateful_step_count=40)
