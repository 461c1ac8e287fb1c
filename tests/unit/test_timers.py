"""The deadline index: scheduling, moving, cancelling and firing keys by wall-clock time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exchange._timers import DeadlineIndex, ExpiryQueue


def test_due_returns_keys_at_or_before_now_earliest_first() -> None:
    """due(now) fires every key whose time is <= now, in time order, and only those."""
    index = DeadlineIndex()
    index.schedule("b", 20)
    index.schedule("a", 10)
    index.schedule("c", 30)
    assert index.due(9) == []
    assert index.due(20) == ["a", "b"]
    assert index.due(100) == ["c"]
    assert len(index) == 0


def test_a_key_fires_once() -> None:
    """A fired key is removed: a later due() does not return it again."""
    index = DeadlineIndex()
    index.schedule("a", 10)
    assert index.due(10) == ["a"]
    assert index.due(10_000) == []
    assert "a" not in index


def test_rescheduling_moves_the_key() -> None:
    """Scheduling a key again replaces its time; the old time no longer fires it."""
    index = DeadlineIndex()
    index.schedule("a", 10)
    index.schedule("a", 50)
    assert index.due(49) == []
    assert index.at("a") == 50
    assert index.due(50) == ["a"]


def test_moving_back_to_an_earlier_time_fires_once() -> None:
    """A -> B -> A leaves two heap entries for A; the key still fires exactly once."""
    index = DeadlineIndex()
    index.schedule("a", 10)
    index.schedule("a", 20)
    index.schedule("a", 10)
    assert index.due(100) == ["a"]


def test_cancelled_key_never_fires() -> None:
    """cancel() removes a key; cancelling an unknown key is harmless."""
    index = DeadlineIndex()
    index.schedule("a", 10)
    index.cancel("a")
    index.cancel("never-scheduled")
    assert index.due(100) == []
    assert index.next_at() is None


def test_next_at_skips_cancelled_entries() -> None:
    """next_at() is the earliest live time, ignoring stale heap entries."""
    index = DeadlineIndex()
    index.schedule("a", 10)
    index.schedule("b", 20)
    index.cancel("a")
    assert index.next_at() == 20


def test_heap_stays_proportional_to_live_keys_under_churn() -> None:
    """Heavy cancelling (every answered inquiry) does not let stale entries pile up."""
    index = DeadlineIndex()
    for i in range(50_000):
        index.schedule(f"k{i}", i)
        index.cancel(f"k{i}")
    index.schedule("live", 1)
    assert len(index._heap) <= 2 * 1024
    assert index.due(10) == ["live"]


_ops = st.lists(
    st.tuples(
        st.sampled_from(["schedule", "cancel", "due"]),
        st.sampled_from("abcdef"),
        st.integers(min_value=0, max_value=100),
    ),
    max_size=80,
)


@given(_ops)
def test_matches_a_naive_model(ops: list[tuple[str, str, int]]) -> None:
    """Any sequence of operations fires the same keys as a plain dict scanned in full."""
    index, model = DeadlineIndex(), dict[str, int]()
    for op, key, t in ops:
        if op == "schedule":
            index.schedule(key, t)
            model[key] = t
        elif op == "cancel":
            index.cancel(key)
            model.pop(key, None)
        else:
            expected = sorted((at, k) for k, at in model.items() if at <= t)
            assert index.due(t) == [k for _, k in expected]
            for _, k in expected:
                del model[k]
        assert len(index) == len(model)
        assert index.next_at() == min(model.values(), default=None)


def test_expiry_queue_fires_only_entries_that_are_still_current() -> None:
    """pop_due returns keys whose live time matches the entry, each once, earliest first."""
    live = {"a": 10, "b": 30, "c": 20}
    queue = ExpiryQueue([(10, "a"), (5, "b")])
    queue.push("b", 30)
    queue.push("c", 20)
    queue.push("c", 20)  # pushed twice (a replayed changelog record): fires once
    assert queue.next_at(live.get) == 10
    assert queue.pop_due(25, live.get) == ["a", "c"]
    del live["b"]  # forgotten meanwhile: its entry is dropped when it surfaces
    assert queue.next_at(live.get) is None
    assert queue.pop_due(100, live.get) == []
