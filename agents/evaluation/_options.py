"""Options of the evaluation processor (beyond the bus-wide settings)."""

from __future__ import annotations

from dataclasses import dataclass

from exchange._compliance import Granularity

__all__ = ["EvaluationOptions"]


@dataclass(frozen=True, slots=True)
class EvaluationOptions:
    """How the evaluation processor runs; durations in seconds.

    ``web_port`` None serves no web view; 0 is not accepted (faust's web server cannot report
    the port it got). ``hour_expires``/``day_expires`` keep a window in the live tables that
    long after it closes; records for older windows are left to the report's audit fallback.
    ``clock_slack`` allows for writers' clocks that differ.
    """

    web_port: int | None = 6066
    web_host: str = "127.0.0.1"
    publish_interval: float = 1.0
    hour_expires: float = 48 * 3600.0
    day_expires: float = 8 * 86400.0
    clock_slack: float = 300.0
    stop_timeout: float = 15.0
    table_cleanup_interval: float = 30.0
    #: A member that stops heartbeating (killed) leaves the group after this long; a restart
    #: waits that long for its partitions. faust's default (60 s) suits long rebalances of
    #: big state; the evaluation state is small.
    session_timeout: float = 10.0

    def expires_ms(self) -> dict[Granularity, int]:
        """Expiry per granularity in milliseconds, as the evaluation step takes it."""
        return {
            Granularity.HOUR: round(self.hour_expires * 1000),
            Granularity.DAY: round(self.day_expires * 1000),
        }
