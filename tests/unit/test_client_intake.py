"""The provider's intake bookkeeping: commit offsets without gaps, take each inquiry once."""

from __future__ import annotations

import pytest

from exchange._intake import OffsetTracker, SeenInquiries


def test_commit_waits_for_the_lowest_offset_in_progress() -> None:
    """An offset finished out of order is committed only once every lower one finished."""
    tracker: OffsetTracker[int] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.start(0, offset)
    tracker.finish(0, 12)
    tracker.finish(0, 11)
    assert tracker.committable() == {}
    tracker.finish(0, 10)
    assert tracker.committable() == {0: 13}
    assert tracker.in_progress() == 0


def test_committable_reports_only_partitions_that_moved() -> None:
    """A second call without progress has nothing to commit."""
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.start("a", 0)
    tracker.start("b", 5)
    tracker.finish("a", 0)
    assert tracker.committable() == {"a": 1}
    assert tracker.committable() == {}
    tracker.finish("b", 5)
    assert tracker.committable() == {"b": 6}


def test_revoked_partition_is_forgotten() -> None:
    """A record finishing after its partition was revoked commits nothing."""
    tracker: OffsetTracker[int] = OffsetTracker()
    tracker.start(3, 7)
    tracker.drop(3)
    tracker.finish(3, 7)
    assert tracker.committable() == {}


def test_seen_inquiries_claim_once() -> None:
    """The first claim of an id wins; a repeat is refused until released."""
    seen = SeenInquiries(capacity=10)
    assert seen.claim("x")
    assert not seen.claim("x")
    seen.release("x")
    assert seen.claim("x")


def test_seen_inquiries_evict_the_least_recently_seen() -> None:
    """Past capacity the oldest id is forgotten and a recently repeated one is kept."""
    seen = SeenInquiries(capacity=2)
    seen.claim("a")
    seen.claim("b")
    seen.claim("a")  # refreshes "a"
    seen.claim("c")
    assert "a" in seen
    assert "b" not in seen
    assert len(seen) == 2


def test_seen_inquiries_need_room() -> None:
    """A zero capacity is refused."""
    with pytest.raises(ValueError, match="capacity"):
        SeenInquiries(capacity=0)
