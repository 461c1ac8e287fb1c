"""The alert rules in docker/prometheus: valid for promtool, unit-tested, on real metric names."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _prometheus import known_series, metric_names, prometheus_tool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = [PROMETHEUS_DIR / "tests.yml", PROMETHEUS_DIR / "tests-silence.yml"]
#: What operators must hear about (issue: timeouts, DLQ, lag, circuit, a silent agency).
REQUIRED = {
    "ExchangeTimeoutsRising",
    "ExchangeDeadLettersGrowing",
    "ExchangeConsumerLagGrowing",
    "ExchangeConnectorCircuitOpen",
    "ExchangeAgencySilent",
}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [prometheus_tool("promtool"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_required_alerts_exist() -> None:
    """Timeouts, dead letters, lag, an open circuit and a silent agency each have an alert."""
    assert {rule["alert"] for rule in _alerts()} >= REQUIRED


def test_promtool_checks_the_rules() -> None:
    """``promtool check rules`` accepts alerts.yml."""
    done = _promtool("check", "rules", ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_compose_config() -> None:
    """``promtool check config`` accepts the compose file's prometheus.yml and its rule files."""
    done = _promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_promtool_rule_tests_pass() -> None:
    """``promtool test rules`` passes every case of tests.yml and tests-silence.yml."""
    done = _promtool("test", "rules", *RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def _cases() -> dict[str, dict[str, int]]:
    """Alert -> {"firing": n, "quiet": n} over every rule-test file."""
    counts: dict[str, dict[str, int]] = {}
    for path in RULE_TESTS:
        spec = yaml.safe_load(path.read_text())
        assert spec["rule_files"] == ["alerts.yml"], path
        for test in spec["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                tally = counts.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
                tally[kind] += 1
    return counts


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _alerts()])
def test_every_alert_has_a_firing_and_a_quiet_case(alert: str) -> None:
    """Each alert is tested both where it must fire and where it must stay quiet."""
    tally = _cases().get(alert, {"firing": 0, "quiet": 0})
    assert tally["firing"] >= 1, f"{alert}: no case where it fires"
    assert tally["quiet"] >= 1, f"{alert}: no case where it stays quiet"


def test_rule_tests_name_only_existing_alerts() -> None:
    """A test case for a renamed or removed alert would pass vacuously; none exists."""
    assert set(_cases()) <= {rule["alert"] for rule in _alerts()}


@pytest.mark.parametrize("rule", _alerts(), ids=lambda rule: rule["alert"])
def test_alert_reads_only_metrics_the_bus_exports(rule: dict[str, Any]) -> None:
    """Every series an alert reads is one the bus exposes (a typo would never fire)."""
    names = metric_names(rule["expr"])
    assert names
    assert names <= known_series(), names - known_series()


@pytest.mark.parametrize("rule", _alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_and_text(rule: dict[str, Any]) -> None:
    """Each alert says how bad it is, and what happened in a summary and a description."""
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(rule["annotations"]) >= {"summary", "description"}
