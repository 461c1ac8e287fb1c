"""Per-process CPU seconds and peak RSS, read from outside the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exchange.bench._procstats import ProcessMeter

# Burns 0.3 s of CPU, says so, waits for a line, burns 0.3 s more, says so, then idles until
# killed: every reading is taken at a known point while the process is alive, whatever the load.
BURNER = """import sys, time
def burn():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    print("burnt", flush=True)
burn()
sys.stdin.readline()
burn()
time.sleep(300)
"""


def test_meter_reads_cpu_in_window_and_peak_rss() -> None:
    """Only the CPU burnt after the mark counts (0.3 s, not the 0.6+ s since start), and RSS.

    The readings are taken at handshakes, not after sleeps, so a loaded machine only slows the
    test; a meter counting from the process's start (or missing the window) still fails.
    """
    with subprocess.Popen(
        [sys.executable, "-c", BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            meter = ProcessMeter()
            meter.track("burner", proc.pid)
            assert proc.stdout.readline() == "burnt\n"
            meter.mark()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "burnt\n"
            (usage,) = meter.finish()
        finally:
            proc.kill()
    assert usage.role == "burner"
    assert 0.25 <= usage.cpu_s <= 0.55
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
