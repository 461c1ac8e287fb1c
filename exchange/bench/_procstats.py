"""CPU seconds and peak resident memory of the processes a scenario runs, read from outside.

Measured by the runner on its children through psutil, so a scenario's processes need no code
of their own for it (the bus scenario runs the real workers unchanged). CPU is counted over a
window (:meth:`ProcessMeter.mark` to :meth:`ProcessMeter.finish`) that leaves out start-up and
warm-up; peak RSS is over the process's whole life: the kernel's high-water mark (``VmHWM``) on
Linux, the largest sample seen elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psutil

_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """What one process used: CPU seconds in the measured window and its peak RSS."""

    role: str
    cpu_s: float
    peak_rss_mb: float

    def to_json(self) -> dict[str, float]:
        """Plain JSON values."""
        return {"cpu_s": self.cpu_s, "peak_rss_mb": self.peak_rss_mb}


@dataclass(slots=True)
class _Tracked:
    proc: psutil.Process
    cpu_at_mark: float = 0.0
    cpu_last: float = 0.0
    rss_max: int = 0
    ended: bool = field(default=False)


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _high_water_mark(pid: int) -> int | None:
    """Peak RSS in bytes from ``/proc/<pid>/status`` (Linux), or ``None`` where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class ProcessMeter:
    """Tracks processes by role; call :meth:`sample` periodically while they run."""

    def __init__(self) -> None:
        self._tracked: dict[str, _Tracked] = {}

    def track(self, role: str, pid: int) -> None:
        """Start tracking process ``pid`` under the name ``role`` (unique per run)."""
        if role in self._tracked:
            raise ValueError(f"role {role!r} is already tracked")
        self._tracked[role] = _Tracked(psutil.Process(pid))
        self.sample()

    def sample(self) -> None:
        """Read every live process's CPU and RSS; a process that has gone keeps its last reading."""
        for entry in self._tracked.values():
            if entry.ended:
                continue
            try:
                with entry.proc.oneshot():
                    entry.cpu_last = _cpu_seconds(entry.proc)
                    rss = int(entry.proc.memory_info().rss)
                hwm = _high_water_mark(entry.proc.pid)
            except psutil.Error:
                entry.ended = True
                continue
            entry.rss_max = max(entry.rss_max, rss, hwm or 0)

    def mark(self) -> None:
        """Start the CPU window now (after start-up and warm-up)."""
        self.sample()
        for entry in self._tracked.values():
            entry.cpu_at_mark = entry.cpu_last

    def finish(self) -> list[ProcessUsage]:
        """Close the CPU window: one reading per role, in the order they were tracked."""
        self.sample()
        return [
            ProcessUsage(
                role=role,
                cpu_s=round(entry.cpu_last - entry.cpu_at_mark, 3),
                peak_rss_mb=round(entry.rss_max / _MB, 1),
            )
            for role, entry in self._tracked.items()
        ]
