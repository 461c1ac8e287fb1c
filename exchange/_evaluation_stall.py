"""When the evaluation processor counts as stalled (pure; the watchdog's decision).

The evaluation processor's runner observes it every few seconds (``agents/evaluation``): is
it ready (assigned, tables recovered), how far recovery has read, per audit partition it
holds the next offset it has yet to process and the end of the committed records, and how
many records it has published. A processor that has work and makes no progress for the
stall time is stalled; its runner then exits non-zero so that a supervisor restarts it.

- **Work**: a held partition whose next offset is before its end (lag), or readiness not
  reached: a rebalance or table recovery that never finishes counts as a stall too.
- **Progress**: anything observed that moved: readiness, the records recovery has read,
  a partition's next offset, the records published.
- **Idle is healthy**: ready with no lag resets the clock, however long nothing moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Observation", "Stall", "Watch", "stalled", "watch"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What the watchdog saw at ``at`` (monotonic seconds)."""

    at: float
    ready: bool
    recovered: int = 0
    #: Per held audit partition: the next offset it has yet to process.
    done: Mapping[int, int] = field(default_factory=dict)
    #: Per held audit partition: the offset after its last committed record.
    ends: Mapping[int, int] = field(default_factory=dict)
    published: int = 0

    def lags(self) -> dict[int, int]:
        """Records yet to process, per held partition that has any."""
        lags = {p: end - self.done.get(p, 0) for p, end in sorted(self.ends.items())}
        return {p: lag for p, lag in lags.items() if lag > 0}

    def with_ends(self, ends: Mapping[int, int]) -> Observation:
        """The same observation with corrected ends."""
        return replace(self, ends=dict(ends))

    def _moved(self) -> tuple[Any, ...]:
        return (self.ready, self.recovered, sorted(self.done.items()), self.published)


@dataclass(frozen=True, slots=True)
class Watch:
    """The watchdog's memory: the last observation, and since when nothing has moved."""

    last: Observation
    since: float


@dataclass(frozen=True, slots=True)
class Stall:
    """No progress for ``idle`` seconds while there was work."""

    idle: float
    recovering: bool
    lags: dict[int, int]

    def describe(self) -> str:
        """One line for the log and the error."""
        if self.recovering:
            return f"rebalance or table recovery unfinished after {self.idle:.0f} s"
        held = ", ".join(f"p{p}: {lag}" for p, lag in self.lags.items())
        return f"no progress for {self.idle:.0f} s with records to process ({held})"


def watch(previous: Watch | None, seen: Observation) -> Watch:
    """Fold one observation into the watchdog's memory."""
    healthy_idle = seen.ready and not seen.lags()
    if previous is None or healthy_idle or seen._moved() != previous.last._moved():
        return Watch(seen, seen.at)
    return Watch(seen, previous.since)


def stalled(state: Watch, stall_after: float) -> Stall | None:
    """A stall once nothing has moved for ``stall_after`` seconds while there was work."""
    idle = state.last.at - state.since
    if idle < stall_after:
        return None
    return Stall(idle, not state.last.ready, state.last.lags())
