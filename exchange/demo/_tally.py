"""What a demo run sent and what came back, counted as it happens (pure, no I/O).

Three witnesses, kept apart so that they can be compared:

- the **replies topics**, read by the demo's own observer (read-committed, every record,
  whoever it was addressed to): the outcomes the bus delivered, and how many times;
- the **clients**: the outcome each :class:`~exchange.ExchangeClient` handed to its caller
  (or ``TIMED_OUT`` with ``local`` set when none came in time);
- the **audit topic**: the bus's own record of every settled inquiry.

Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from exchange._outcome import Outcome
from exchange.demo._workload import Intent

__all__ = ["Reply", "Sent", "Tally"]


@dataclass(frozen=True, slots=True)
class Sent:
    """One inquiry the demo sent."""

    service: str
    requester: str
    intent: Intent
    at: float
    #: False for inquiries written raw (not through the SDK), whose outcome only the
    #: replies topic shows.
    via_client: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """An outcome record read from a replies topic."""

    kind: str
    status: str | None
    reject_reason: str | None
    error_code: str | None
    answered_by: str | None
    at: float


@dataclass(slots=True)
class Tally:
    """Counts of one run; see the module docstring."""

    sent: dict[str, Sent] = field(default_factory=dict)
    #: The first outcome record of each inquiry id seen on a replies topic.
    replies: dict[str, Reply] = field(default_factory=dict)
    #: Outcome records per inquiry id (more than one is a duplicate delivery).
    reply_records: Counter[str] = field(default_factory=Counter)
    client: dict[str, Outcome] = field(default_factory=dict)
    #: Outcome kind of each inquiry's ``SETTLED`` audit record, and how many it has.
    audit: dict[str, str] = field(default_factory=dict)
    audit_records: Counter[str] = field(default_factory=Counter)
    #: Audit records that are not settlements (late, duplicate, foreign responses …).
    anomalies: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    garbage_sent: int = 0
    first_sent_at: float | None = None
    last_sent_at: float | None = None
    #: Sent inquiries that have an outcome on the replies topic.
    settled: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def record_sent(self, inquiry_id: str, sent: Sent) -> None:
        """An inquiry left the demo."""
        self.sent[inquiry_id] = sent
        if self.first_sent_at is None:
            self.first_sent_at = sent.at
        self.last_sent_at = sent.at
        reply = self.replies.get(inquiry_id)
        if reply is not None:  # its outcome was read before the send returned
            self._settle(reply)

    def record_reply(self, inquiry_id: str, reply: Reply) -> None:
        """An outcome record on a replies topic (any inquiry's, this run's or not)."""
        self.reply_records[inquiry_id] += 1
        if inquiry_id in self.replies:
            return
        self.replies[inquiry_id] = reply
        if inquiry_id in self.sent:
            self._settle(reply)

    def _settle(self, reply: Reply) -> None:
        self.settled += 1
        self.kinds[reply.kind] += 1

    def record_client(self, outcome: Outcome) -> None:
        """The outcome a client handed over (the first one only; a client gives one)."""
        self.client.setdefault(str(outcome.inquiry_id), outcome)

    def record_audit(self, inquiry_id: str, event: str, kind: str | None) -> None:
        """One audit record."""
        if event != "SETTLED":
            self.anomalies[event] += 1
            return
        self.audit_records[inquiry_id] += 1
        self.audit.setdefault(inquiry_id, kind or "UNKNOWN")

    def record_dead_letter(self, reason: str) -> None:
        """One record on the dead-letter topic."""
        self.dead_letters[reason] += 1

    # --- progress -----------------------------------------------------------------------------

    @property
    def clients_pending(self) -> int:
        """Inquiries sent through a client that has not handed over an outcome yet."""
        via = sum(1 for s in self.sent.values() if s.via_client)
        return via - sum(1 for i in self.client if i in self.sent)

    def complete(self) -> bool:
        """Every inquiry settled on its replies topic, handed to its caller and audited, and
        every garbage record dead-lettered."""
        if self.settled < len(self.sent) or self.clients_pending > 0:
            return False
        if sum(self.dead_letters.values()) < self.garbage_sent:
            return False
        return all(i in self.audit for i in self.sent)
