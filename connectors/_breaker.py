"""The circuit breaker between a connector and its legacy system (pure: no I/O, no clock).

States and moves (``now`` is passed in, seconds on any monotonic clock)::

             failure_threshold retriable failures in a row
    CLOSED ───────────────────────────────────────────────► OPEN ◄──────────┐
      ▲                                                       │ probe due:   │ probe failed
      │ trial call succeeded                                  │ check() ok   │ (wait doubles,
      │                                                       ▼              │  up to max)
      └──────────────────────────────────────────────── HALF_OPEN ──────────┘
                                                      one trial call; it failed

- CLOSED: calls go through; a success resets the failure count.
- OPEN: no call goes through; the runtime **pauses intake** (stops fetching from Kafka) and
  probes the system with ``check()`` every ``probe_interval`` (doubling up to
  ``max_probe_interval``).
- HALF_OPEN: ``check()`` passed; intake resumes and exactly one call is let through as the
  trial; the others wait. Its success closes the circuit, its failure opens it again. A trial
  that ends neither way (cancelled at its inquiry's deadline) gives its slot back.

A :class:`~exchange.PermanentError` is a success here: the system answered, it refused.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(enum.IntEnum):
    """The values are the ``exchange_connector_circuit_state`` gauge's."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    """See the module docstring; every method returns at once and reads no clock."""

    failure_threshold: int = 5
    probe_interval: float = 1.0
    max_probe_interval: float = 30.0
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    next_probe: float = 0.0
    _wait: float = 0.0
    _trial_taken: bool = False

    def try_acquire(self) -> bool:
        """May a call go to the system now? In HALF_OPEN this takes the one trial slot."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.HALF_OPEN and not self._trial_taken:
            self._trial_taken = True
            return True
        return False

    def release(self) -> None:
        """A call let through ended without a verdict (cancelled): free the trial slot."""
        self._trial_taken = False

    def record_success(self) -> CircuitState:
        """The system answered (a permanent refusal counts): close the circuit."""
        self.state = CircuitState.CLOSED
        self.failures = 0
        self._wait = 0.0
        self._trial_taken = False
        return self.state

    def record_failure(self, now: float) -> CircuitState:
        """A call failed with a retriable error; may open the circuit."""
        if self.state is CircuitState.CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._open(now, self.probe_interval)
        elif self.state is CircuitState.HALF_OPEN:
            self._open(now, self._next_wait())
        return self.state

    def trip(self, now: float) -> CircuitState:
        """Open the circuit now (``check()`` failed at start-up)."""
        self._open(now, self.probe_interval)
        return self.state

    def probe_due(self, now: float) -> bool:
        """Is it time to call ``check()``? Only while OPEN."""
        return self.state is CircuitState.OPEN and now >= self.next_probe

    def record_probe(self, ok: bool, now: float) -> CircuitState:
        """The result of ``check()`` while OPEN: HALF_OPEN if it passed, else wait longer."""
        if self.state is not CircuitState.OPEN:
            return self.state
        if ok:
            self.state = CircuitState.HALF_OPEN
            self._trial_taken = False
        else:
            self._open(now, self._next_wait())
        return self.state

    def _next_wait(self) -> float:
        return min(max(self._wait, self.probe_interval) * 2, self.max_probe_interval)

    def _open(self, now: float, wait: float) -> None:
        self.state = CircuitState.OPEN
        self._wait = wait
        self.next_probe = now + wait
        self._trial_taken = False
