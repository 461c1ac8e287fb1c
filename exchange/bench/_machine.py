"""What the figures were measured on: they mean little without it."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def load_average() -> float | None:
    """The one-minute load average: other work on the machine skews every figure."""
    try:
        return round(psutil.getloadavg()[0], 2)
    except OSError:
        return None


def machine_info(kafka_version: str | None) -> dict[str, Any]:
    """Cores, memory, CPU model, OS, Python and client versions, and the broker's version."""
    return {
        "cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "aiokafka": _dist_version("aiokafka"),
        "kafka_version": kafka_version,
    }
