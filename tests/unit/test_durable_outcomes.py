"""The durable reply reader's books: what may be committed, what is parked and claimed."""

from __future__ import annotations

import uuid

from exchange._durable import ReplyLedger
from exchange._outcome import Outcome, OutcomeKind


def outcome(key: str) -> Outcome:
    return Outcome(
        inquiry_id=uuid.UUID(key), kind=OutcomeKind.ANSWERED, service="s.v1", provider="P"
    )


A, B = str(uuid.uuid4()), str(uuid.uuid4())


def test_records_of_others_move_the_commit_position() -> None:
    """Nothing held: the offset to commit is the next one to read."""
    ledger = ReplyLedger(claim_window=60)
    ledger.seen(0, 4)
    ledger.seen(1, 9)
    assert ledger.to_commit() == {0: 5, 1: 10}


def test_a_held_outcome_stops_the_commit_until_acknowledged() -> None:
    """Gap-free: the lowest unacknowledged offset of a partition is committed, no further."""
    ledger = ReplyLedger(claim_window=60)
    ledger.hold(0, 3, A)
    ledger.seen(0, 4)
    ledger.hold(0, 5, B)
    assert ledger.to_commit() == {0: 3}
    ledger.acknowledge(B)
    assert ledger.to_commit() == {}  # unchanged: nothing to send
    ledger.acknowledge(A)
    assert ledger.to_commit() == {0: 6}
    assert ledger.held == 0


def test_a_parked_outcome_is_claimed_once_and_stays_held() -> None:
    """The resend of an inquiry takes the outcome read before it; committing waits for the
    acknowledgement that follows."""
    ledger = ReplyLedger(claim_window=60)
    ledger.hold(0, 0, A)
    ledger.park(A, outcome(A), now=0.0)
    assert ledger.claim(A) == outcome(A)
    assert ledger.claim(A) is None
    assert ledger.to_commit() == {0: 0}
    ledger.acknowledge(A)
    assert ledger.to_commit() == {0: 1}


def test_unclaimed_outcomes_are_released_after_the_window() -> None:
    """An outcome nobody claims (delivered before a crash, or given up on) does not stall."""
    ledger = ReplyLedger(claim_window=10)
    ledger.hold(0, 0, A)
    ledger.park(A, outcome(A), now=0.0)
    ledger.hold(0, 1, B)
    ledger.park(B, outcome(B), now=5.0)
    assert ledger.expire(now=12.0) == [A]
    assert ledger.parked == 1
    assert ledger.to_commit() == {0: 1}


def test_failed_commits_are_offered_again() -> None:
    """A commit Kafka refused is retried at the next round."""
    ledger = ReplyLedger(claim_window=10)
    ledger.seen(2, 0)
    offsets = ledger.to_commit()
    ledger.commit_failed(offsets)
    assert ledger.to_commit() == {2: 1}


def test_a_new_reader_commits_where_it_starts() -> None:
    """A first start is committed at once, so outcomes after it survive a restart."""
    ledger = ReplyLedger(claim_window=10)
    ledger.start(0, 42)
    ledger.start(1, 0)
    assert ledger.to_commit() == {0: 42, 1: 0}
