"""`exchange catalog` and `exchange schemas`: exit codes, summaries and located problems."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "catalog" / "demo"
SCHEMAS = ROOT / "schemas"
FIXTURES = ROOT / "tests" / "fixtures" / "catalogs"
BROKEN = FIXTURES / "broken"
INCOMPATIBLE = FIXTURES / "incompatible"

#: The mistakes planted in tests/fixtures/catalogs/broken, as (file:line:column, message part).
PLANTED = [
    ("agencies.yaml:14:11", "agency TAX: defined twice (first at line 8)"),
    ("agencies.yaml:18:11", "agency code 'bank_melli' must be upper-case"),
    ("policies.yaml:10:14", "names unknown service nocr.person.verify.v9"),
    ("policies.yaml:19:15", "purpose code 'Tax Clearance' must be lower-case words"),
    ("services.yaml:13:15", "provider names unknown agency POST"),
    ("services.yaml:24:31", "default_deadline_seconds (600) exceeds max_deadline_seconds (60)"),
    ("services.yaml:29:5", "schema folder"),
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_accepts_the_demo_catalog(runner: CliRunner) -> None:
    """A valid catalog exits 0 with a one-line summary of what it holds."""
    result = runner.invoke(app, ["catalog", "check", str(DEMO), "--schemas", str(SCHEMAS)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{DEMO}: valid (7 agencies, 6 services, 17 policies)\n"


def test_check_reads_paths_from_settings(runner: CliRunner) -> None:
    """Without arguments the paths come from EXCHANGE_CATALOG_PATH / EXCHANGE_SCHEMAS_PATH."""
    env = {"EXCHANGE_CATALOG_PATH": str(DEMO), "EXCHANGE_SCHEMAS_PATH": str(SCHEMAS)}
    result = runner.invoke(app, ["catalog", "check"], env=env)
    assert result.exit_code == 0, result.output


def test_check_reports_every_planted_mistake_with_its_place(runner: CliRunner) -> None:
    """The broken catalog exits 1 and prints each planted mistake on its own line."""
    result = runner.invoke(app, ["catalog", "check", str(BROKEN), "--schemas", str(SCHEMAS)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(PLANTED)
    for line, (place, message) in zip(lines, PLANTED, strict=True):
        assert line.startswith(f"{BROKEN}/{place}: "), line
        assert message in line
    assert result.stderr == f"{BROKEN}: {len(PLANTED)} problem(s)\n"


def test_check_json_lists_problems(runner: CliRunner) -> None:
    """--json prints a machine-readable verdict with every problem."""
    args = ["catalog", "check", str(BROKEN), "--schemas", str(SCHEMAS), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert len(report["problems"]) == len(PLANTED)
    assert all(re.match(r".+\.yaml:\d+:\d+: ", p) for p in report["problems"])


def test_console_script_exits_non_zero_on_the_broken_catalog() -> None:
    """The installed `exchange` entry point reports the problems and exits 1 as well."""
    env = {**os.environ, "EXCHANGE_SCHEMAS_PATH": str(SCHEMAS)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exchange.cli import main; main()",
            "catalog",
            "check",
            str(BROKEN),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == len(PLANTED)


def test_show_lists_agencies_services_and_policies(runner: CliRunner) -> None:
    """`catalog show` prints the three tables; --json gives the catalog with service ids."""
    args = ["catalog", "show", str(DEMO), "--schemas", str(SCHEMAS)]
    text = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    for expected in ("Agencies", "Services", "Policies", "BANK-MELLI", "tax.clearance.status.v1"):
        assert expected in text.stdout
    dumped = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert dumped["services"][0]["id"] == "nocr.person.verify.v1"
    assert len(dumped["policies"]) == 17


def test_schemas_check_passes_on_the_shipped_schemas(runner: CliRunner) -> None:
    """The evolution gate exits 0 on the demo catalog's schemas."""
    args = ["schemas", "check", "--catalog", str(DEMO), "--schemas", str(SCHEMAS)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "0 incompatible" in result.stdout


def test_schemas_check_names_the_incompatible_revision(runner: CliRunner) -> None:
    """An incompatible revision fails the gate with service, revisions and the reason."""
    args = ["schemas", "check", "--catalog", str(INCOMPATIBLE)]
    result = runner.invoke(app, [*args, "--schemas", str(INCOMPATIBLE / "schemas")])
    assert result.exit_code == 1
    assert result.stdout == (
        "post.address.lookup.v1 response (BACKWARD, backward): reader response-2 / writer "
        "response-1: INCOMPATIBLE: reader_field_missing_default_value: province (at /fields/1)\n"
    )


def test_schemas_check_json(runner: CliRunner) -> None:
    """--json reports each check with its verdict."""
    args = ["schemas", "check", "--catalog", str(INCOMPATIBLE), "--json"]
    result = runner.invoke(app, [*args, "--schemas", str(INCOMPATIBLE / "schemas")])
    report = json.loads(result.stdout)
    assert report["compatible"] is False
    assert report["checks"][0]["service_id"] == "post.address.lookup.v1"
    assert report["checks"][0]["reader_revision"] == 2


def test_schemas_list(runner: CliRunner) -> None:
    """`schemas list --json` lists every revision with its record name and fingerprint."""
    args = ["schemas", "list", "--catalog", str(DEMO), "--schemas", str(SCHEMAS), "--json"]
    rows = json.loads(runner.invoke(app, args).stdout)
    assert len(rows) == 16
    first = rows[0]
    assert first["service"] == "nocr.person.verify.v1"
    assert first["full_name"] == "ir.gov.nocr.person.verify.v1.VerifyRequest"
    assert re.fullmatch(r"[0-9a-f]{16}", first["fingerprint"])
