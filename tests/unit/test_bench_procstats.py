"""Per-process CPU seconds and peak RSS, read from outside the process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from exchange.bench._procstats import ProcessMeter

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_meter_reads_cpu_in_window_and_peak_rss() -> None:
    """A process that burns 0.3 s of CPU after the mark shows about that much, and its RSS."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.stdin.read()\n{BURN}"], stdin=subprocess.PIPE
    )
    try:
        meter = ProcessMeter()
        meter.track("burner", proc.pid)
        time.sleep(0.3)  # let the interpreter start before the window opens
        meter.mark()
        assert proc.stdin is not None
        proc.stdin.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            meter.sample()
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        (usage,) = meter.finish()
    finally:
        proc.kill()
        proc.wait()
    assert usage.role == "burner"
    assert 0.15 <= usage.cpu_s <= 1.0
    assert usage.peak_rss_mb > 1.0


def test_roles_are_unique() -> None:
    """Two processes under one role would merge in the report."""
    meter = ProcessMeter()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        meter.track("same", proc.pid)
        with pytest.raises(ValueError, match="already tracked"):
            meter.track("same", proc.pid)
    finally:
        proc.kill()
        proc.wait()
