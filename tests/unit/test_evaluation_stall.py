"""The evaluation watchdog's decision: progress, healthy idle, and stalls."""

from __future__ import annotations

from exchange._evaluation_stall import Observation, Stall, Watch, stalled, watch

STALL = 60.0


def _run(*seen: Observation) -> Watch:
    state = None
    for observation in seen:
        state = watch(state, observation)
    assert state is not None
    return state


def _lagging(at: float, done: int = 5, published: int = 3) -> Observation:
    return Observation(
        at, ready=True, done={0: done, 1: 10}, ends={0: 12, 1: 10}, published=published
    )


def test_lag_without_progress_for_the_stall_time_is_a_stall() -> None:
    """Held partitions with lag and nothing moving for the stall time: a stall, with lags."""
    state = _run(_lagging(0.0), _lagging(30.0), _lagging(60.0))
    assert stalled(state, STALL) == Stall(60.0, recovering=False, lags={0: 7})


def test_lag_without_progress_shorter_than_the_stall_time_is_not_a_stall() -> None:
    """Nothing moving for less than the stall time is not yet a stall."""
    assert stalled(_run(_lagging(0.0), _lagging(59.0)), STALL) is None


def test_an_advancing_offset_is_progress() -> None:
    """A partition's next offset moving restarts the clock."""
    state = _run(_lagging(0.0), _lagging(50.0, done=6), _lagging(100.0, done=6))
    assert stalled(state, STALL) is None
    assert stalled(watch(state, _lagging(110.0, done=6)), STALL) is not None


def test_publishing_is_progress() -> None:
    """Records published restart the clock even when offsets stand still."""
    state = _run(_lagging(0.0), _lagging(50.0, published=4), _lagging(100.0, published=4))
    assert stalled(state, STALL) is None


def test_idle_without_lag_is_healthy_however_long() -> None:
    """Ready and caught up: nothing moving for hours is no stall."""
    idle = [Observation(t, ready=True, done={0: 12}, ends={0: 12}) for t in (0.0, 3600.0, 7200.0)]
    assert stalled(_run(*idle), STALL) is None


def test_idle_resets_the_clock_before_new_lag() -> None:
    """Lag that appears after a long idle spell is timed from the last healthy observation."""
    idle = Observation(0.0, ready=True, done={0: 12}, ends={0: 12})
    later = Observation(3600.0, ready=True, done={0: 12}, ends={0: 12})
    lagging = Observation(3610.0, ready=True, done={0: 12}, ends={0: 20})
    assert stalled(_run(idle, later, lagging), STALL) is None


def test_a_recovery_that_never_finishes_is_a_stall() -> None:
    """Not ready and recovery reading nothing for the stall time: a stall, even without lag."""
    state = _run(*(Observation(t, ready=False, recovered=40) for t in (0.0, 30.0, 61.0)))
    stall = stalled(state, STALL)
    assert stall is not None
    assert stall.recovering
    assert "recovery" in stall.describe()


def test_a_recovery_that_reads_is_progress() -> None:
    """A long recovery that keeps reading its changelogs is not a stall."""
    seen = [Observation(t, ready=False, recovered=int(t)) for t in (0.0, 30.0, 61.0, 95.0)]
    assert stalled(_run(*seen), STALL) is None


def test_becoming_ready_is_progress() -> None:
    """The moment recovery finishes restarts the clock for the lag that follows."""
    state = _run(
        Observation(0.0, ready=False),
        Observation(50.0, ready=True, done={0: 0}, ends={0: 9}),
        Observation(100.0, ready=True, done={0: 0}, ends={0: 9}),
    )
    assert stalled(state, STALL) is None


def test_lag_that_is_only_markers_is_no_stall_once_the_ends_are_corrected() -> None:
    """Ends corrected to the last committed record (a tail of transaction markers) clear it."""
    seen = _lagging(0.0)
    state = _run(seen, _lagging(61.0))
    assert stalled(state, STALL) is not None
    corrected = _lagging(61.0).with_ends({0: 5, 1: 10})
    assert stalled(watch(Watch(seen, 0.0), corrected), STALL) is None


def test_the_description_names_each_lagging_partition() -> None:
    """The log line lists every lagging partition with its lag."""
    text = Stall(75.0, recovering=False, lags={0: 7, 2: 1}).describe()
    assert text == "no progress for 75 s with records to process (p0: 7, p2: 1)"
