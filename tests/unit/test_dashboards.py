"""Grafana dashboards as code: valid JSON, queries that parse and name real metrics, provisioned.

The dashboards are the JSON files in docker/grafana/dashboards/; docker/compose.yml mounts them
and the provisioning folder. Queries are checked for syntax by promtool (each becomes a
recording rule in a scratch rules file) and for metric names against what the bus defines.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _grafana import FILES, load, panels, queries, substitute, variables_in
from _prometheus import known_series, metric_names, prometheus_tool

DOCKER = Path(__file__).resolve().parents[2] / "docker"
GRAFANA = DOCKER / "grafana"
UIDS = {"exchange-overview", "exchange-agency", "exchange-connectors"}
#: Grafana 11.1, the compose file's image, writes schema version 39.
MIN_SCHEMA_VERSION = 36
#: Values for Grafana's variables when an expression is checked on its own.
SAMPLE_VALUES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "agency": "TAX",
    "connector": ".*",
}


@pytest.fixture(scope="module", params=FILES, ids=lambda path: path.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One parsed dashboard."""
    return load(request.param)


def test_the_three_dashboards_exist() -> None:
    """Bus overview, per-agency view and connectors, with distinct uids."""
    uids = [load(path)["uid"] for path in FILES]
    assert sorted(uids) == sorted(UIDS)


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    """A schema version Grafana 11 reads, a short stable uid, a title, no database id."""
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"]
    assert dashboard.get("id") is None


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    """Unique ids (Grafana links and edits panels by id); a grid 24 columns wide, no overlap."""
    found = list(panels(dashboard))
    ids = [panel["id"] for panel in found]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], int] = {}
    for panel in found:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] < pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


def test_every_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    """Panels and targets name the ``datasource`` variable, so the JSON imports anywhere."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_queries_name_only_metrics_the_bus_exports(dashboard: dict[str, Any]) -> None:
    """Every series a query reads is defined in the code (exchange/_metrics.py and the rest)."""
    known = known_series()
    for query in queries(dashboard):
        names = metric_names(query.expr)
        assert names, f"{query.where}: no metric in {query.expr}"
        assert names <= known, f"{query.where}: unknown {sorted(names - known)}"


def test_queries_use_only_defined_variables(dashboard: dict[str, Any]) -> None:
    """A ``$name`` in a query is a dashboard variable or one of Grafana's own."""
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    for query in queries(dashboard):
        for name in variables_in(query.expr):
            assert name in defined or name.startswith("__"), f"{query.where}: ${name}"
            assert name in SAMPLE_VALUES, f"{query.where}: give ${name} a sample value here"


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses every query of every dashboard (as recording rules)."""
    rules = [
        {"record": f"dashboard:check:{i}", "expr": substitute(q.expr, SAMPLE_VALUES)}
        for i, q in enumerate(q for path in FILES for q in queries(load(path)))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    command = [prometheus_tool("promtool"), "check", "rules", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _compose_mounts(service: str) -> dict[str, str]:
    """Host path (relative to docker/) -> container path, for the service's bind mounts."""
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    mounts = {}
    for volume in compose["services"][service]["volumes"]:
        host, container, *_ = volume.split(":")
        if host.startswith("."):
            mounts[host] = container
    return mounts


def test_compose_provisions_the_datasource_and_dashboards() -> None:
    """The compose mounts carry the provisioning files to where Grafana reads them, the
    provider points at the mounted dashboards, and the data source is the one they default to."""
    mounts = _compose_mounts("grafana")
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provisioning = GRAFANA / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "exchange.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == mounts["./grafana/dashboards"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    for path in FILES:
        variables = {v["name"]: v for v in load(path)["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == source["uid"], path.name
