"""Results of a run: the JSON files, the printed tables and the latency plot."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

LATEST = "latest"


def ratio_bus_to_relay(scenarios: dict[str, Any]) -> float | None:
    """Bus saturation throughput over relay's, or ``None`` unless both were measured."""
    bus = scenarios.get("bus", {}).get("throughput_per_s")
    relay = scenarios.get("relay", {}).get("throughput_per_s")
    if not bus or not relay:
        return None
    return round(float(bus) / float(relay), 3)


def stamp(doc: dict[str, Any]) -> str:
    """A file-name-safe timestamp of the run's start: ``20261101T120000Z``."""
    return datetime.fromisoformat(doc["started_at"]).strftime("%Y%m%dT%H%M%SZ")


def write_results(doc: dict[str, Any], out_dir: Path, *, plot: bool = True) -> list[Path]:
    """Write ``latest.json`` and ``<stamp>.json`` (and the PNG plots beside them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2) + "\n"
    written = []
    for name in (LATEST, stamp(doc)):
        path = out_dir / f"{name}.json"
        path.write_text(text)
        written.append(path)
        if plot:
            written.append(plot_latency(doc, out_dir / f"{name}.png"))
    return written


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _latency_cell(entry: dict[str, Any]) -> str:
    cell = f"{_fmt(entry.get('p50'))} / {_fmt(entry.get('p99'))}"
    lost = entry.get("incomplete", 0) + entry.get("errors", 0)
    return f"{cell} [red]({lost} lost)[/]" if lost else cell


def _loads(doc: dict[str, Any]) -> list[str]:
    return [str(rate) for rate in doc["config"]["plan"]["loads"]]


def summary_table(doc: dict[str, Any]) -> Table:
    """One row per scenario: saturation throughput, then p50 / p99 (ms) at each offered load."""
    table = Table(title="Throughput and latency (p50 / p99 ms at offered load, inquiries/s)")
    table.add_column("scenario")
    table.add_column("saturation /s", justify="right")
    for rate in _loads(doc):
        table.add_column(f"@{rate}/s", justify="right")
    for name, res in doc["scenarios"].items():
        if "error" in res:
            table.add_row(name, "[red]failed[/]", *["-" for _ in _loads(doc)])
            continue
        cells = [_latency_cell(res["latency_ms"][rate]) for rate in _loads(doc)]
        table.add_row(name, _fmt(res["throughput_per_s"]), *cells)
    return table


def process_table(doc: dict[str, Any]) -> Table:
    """One row per process: CPU seconds and cores used while measured, peak RSS."""
    table = Table(title="Processes (CPU while measured, peak RSS)")
    for column in ("scenario", "process", "cpu s", "cores", "peak RSS MB"):
        table.add_column(column, justify="left" if column in ("scenario", "process") else "right")
    for name, res in doc["scenarios"].items():
        for role, use in res.get("processes", {}).items():
            table.add_row(
                name, role, _fmt(use["cpu_s"]), f"{use['cores']:.2f}", _fmt(use["peak_rss_mb"])
            )
    return table


def _loads_avg(machine: dict[str, Any]) -> str:
    """``before -> after`` of the one-minute load average, when it was read."""
    load = machine.get("load_avg_1m") or {}
    return f"{load.get('before', '?')} -> {load.get('after', '?')}"


def print_report(doc: dict[str, Any], console: Console) -> None:
    """Print the tables, the machine line and the bus-to-relay ratio."""
    machine = doc["machine"]
    console.print(
        f"{machine['cores']} cores, {machine['memory_gb']} GB, Python {machine['python']}, "
        f"Kafka {machine['kafka_version'] or 'unknown'}, {doc['wall_s']} s, "
        f"load average {_loads_avg(machine)}"
    )
    console.print(summary_table(doc))
    console.print(process_table(doc))
    ratio = doc["ratio_bus_to_relay"]
    console.print(f"ratio_bus_to_relay: {ratio if ratio is not None else 'n/a (no bus scenario)'}")


def plot_latency(doc: dict[str, Any], path: Path) -> Path:
    """Latency (p50 dashed, p99 solid) against offered load, one colour per scenario."""
    import matplotlib as mpl

    mpl.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    loads = _loads(doc)
    xs = [int(rate) for rate in loads]
    for i, (name, res) in enumerate(doc["scenarios"].items()):
        if "error" in res:
            continue
        for pct, style in (("p99", "-"), ("p50", "--")):
            ys = [res["latency_ms"][rate].get(pct) for rate in loads]
            ys = [math.nan if y is None else y for y in ys]
            ax.plot(xs, ys, style, color=f"C{i}", marker="o", label=f"{name} {pct}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks(xs, labels=loads)
    ax.set_xlabel("offered load (inquiries/s)")
    ax.set_ylabel("latency (ms), from scheduled send time")
    ax.set_title(f"Latency vs offered load ({doc['machine']['cores']} cores, {doc['started_at']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
