"""The Grafana dashboards as data: their panels and PromQL, with Grafana's variables filled in.

Shared by the unit tests of the JSON (tests/unit/test_dashboards.py) and the real-Prometheus
test that evaluates every query against a running bus (tests/integration/test_prometheus.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[1] / "docker" / "grafana" / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
#: Grafana's variable syntaxes; like Grafana, ``$1`` (a label_replace group) is not one.
VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


@dataclass(frozen=True)
class Query:
    """One PromQL query of a dashboard: where it is (row, panel or variable) and the text."""

    dashboard: str
    row: str
    where: str
    expr: str


def load(path: Path) -> dict[str, Any]:
    """One dashboard's JSON."""
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variable_query(variable: dict[str, Any]) -> str | None:
    """The PromQL inside a query variable (``label_values(expr, label)``, ``query_result``)."""
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, dict) else str(query or "")
    if match := re.fullmatch(r"label_values\((.+),\s*\w+\)", text, re.DOTALL):
        return match.group(1)
    if match := re.fullmatch(r"query_result\((.+)\)", text, re.DOTALL):
        return match.group(1)
    return None


def queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every panel target and query variable of ``dashboard``, in layout order."""
    uid, row, found = dashboard["uid"], "", []
    for panel in panels(dashboard):
        if panel["type"] == "row":
            row = panel["title"]
        where = f"panel {panel['id']} {panel.get('title')!r}"
        found += [Query(uid, row, where, target["expr"]) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query" and (expr := variable_query(variable)):
            found.append(Query(uid, "", f"variable {variable['name']}", expr))
    return found


def variables_in(expr: str) -> set[str]:
    """The names of the Grafana variables ``expr`` uses."""
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with each Grafana variable replaced by ``values[name]``."""
    return VARIABLE.sub(lambda m: values[next(g for g in m.groups() if g)], expr)
