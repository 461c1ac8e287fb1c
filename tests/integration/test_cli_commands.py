"""The inquire, provide, tail and desk commands against a real bus: the broker, `exchange
worker` and `exchange provide exchange.demo:providers`, each command run as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from _worker_proc import running_worker

from exchange import ExchangeSettings
from exchange._local_broker_os import free_ports
from exchange._topology import Topics
from exchange.demo._data import build_registers
from exchange.demo._procs import wait_for_groups

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
PROVIDERS = ("BANK-MELLI", "COMPANIES", "NOCR", "POLICE", "POST", "TAX")


class Bus(NamedTuple):
    """The module's running bus: its settings, environment and provider process."""

    settings: ExchangeSettings
    env: dict[str, str]
    provide: subprocess.Popen[bytes]
    metrics_url: str


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from exchange.cli import main; main()", *args]


def _run(bus: Bus, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), env=bus.env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def bus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """Topics applied, one worker, the demo's providers through `exchange provide`."""
    settings = ExchangeSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"cli-{uuid.uuid4().hex[:8]}",
        partitions=2,
        state_dir=tmp_path_factory.mktemp("cli-state"),
        catalog_path=ROOT / "catalog" / "demo",
        schemas_path=ROOT / "schemas",
    )
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_PARTITIONS": "2",
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_CATALOG_PATH": str(settings.catalog_path),
        "EXCHANGE_SCHEMAS_PATH": str(settings.schemas_path),
        "EXCHANGE_LOG_FORMAT": "json",
    }
    applied = subprocess.run(
        _command("topics", "apply"),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    (port,) = free_ports(1)
    log = (settings.state_dir / "provide.log").open("wb")
    provide = subprocess.Popen(
        _command("provide", "exchange.demo:providers", "--metrics-port", str(port)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with running_worker(settings):
            topics = Topics.for_settings(settings)
            groups = [topics.provider_group(agency) for agency in PROVIDERS]
            asyncio.run(wait_for_groups(settings, groups, [], TIMEOUT))
            yield Bus(settings, env, provide, f"http://127.0.0.1:{port}/metrics")
    finally:
        if provide.poll() is None:
            provide.kill()
            provide.wait()
        log.close()


def _person() -> dict[str, Any]:
    registers = build_registers()
    person = next(p for p in registers.people.values() if p.quirk is None)
    return {
        "national_id": person.national_id,
        "birth_date": person.birth_date.isoformat(),
        "first_name": person.first_name,
        "last_name": person.last_name,
    }


def _ask_person(bus: Bus, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        bus,
        "inquire",
        "nocr.person.verify.v1",
        "--as", "BANK-MELLI/loans",
        "--purpose", "loan-application",
        "--payload", json.dumps(_person()),
        *extra,
    )  # fmt: skip


def test_inquire_prints_the_answer(bus: Bus) -> None:
    """An allowed inquiry is ANSWERED FOUND with the decoded payload; exit code 0."""
    human = _ask_person(bus)
    assert human.returncode == 0, human.stderr
    assert "ANSWERED FOUND (automatic)" in human.stdout
    as_json = _ask_person(bus, "--json")
    outcome = json.loads(as_json.stdout)
    assert (outcome["kind"], outcome["status"], outcome["provider"]) == (
        "ANSWERED", "FOUND", "NOCR",
    )  # fmt: skip
    assert outcome["payload"]["national_id"] == _person()["national_id"]
    assert outcome["payload"]["birth_date_match"] is True


def test_inquire_exits_2_when_the_bus_rejects(bus: Bus) -> None:
    """A requester without a policy gets REJECTED NOT_ALLOWED; exit code 2."""
    result = _run(
        bus,
        "inquire",
        "companies.company.standing.v1",
        "--as", "MCLS/benefits",
        "--purpose", "social-benefit-eligibility",
        "--payload", '{"national_company_id": "10380284790"}',
        "--json",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    outcome = json.loads(result.stdout)
    assert (outcome["kind"], outcome["reject_reason"]) == ("REJECTED", "NOT_ALLOWED")


def test_inquire_refuses_an_invalid_payload_before_sending(bus: Bus) -> None:
    """A payload that does not fit the schema is one error line on stderr; exit code 1."""
    result = _run(
        bus,
        "inquire",
        "post.address.lookup.v1",
        "--as", "POLICE/traffic",
        "--purpose", "traffic-enforcement",
        "--payload", '{"postal_code": 42}',
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_tail_outcomes_hides_payload_values_unless_asked(bus: Bus) -> None:
    """Tail shows an outcome's payload field names; --show-payload shows the values."""
    asked = _ask_person(bus, "--json")
    inquiry_id = json.loads(asked.stdout)["inquiry_id"]
    common = ("--agency", "BANK-MELLI", "--from-beginning", "--inquiry", inquiry_id)
    hidden = _run(bus, "tail", "outcomes", *common, "--limit", "1", "--json")
    record = json.loads(hidden.stdout)
    assert record["inquiry_id"] == inquiry_id
    assert "national_id" in record["payload"]
    assert _person()["national_id"] not in hidden.stdout
    shown = _run(bus, "tail", "outcomes", *common, "--limit", "1", "--json", "--show-payload")
    assert json.loads(shown.stdout)["payload"]["national_id"] == _person()["national_id"]
    line = _run(bus, "tail", "outcomes", *common, "--limit", "1")
    assert "ANSWERED FOUND automatic nocr.person.verify.v1" in line.stdout


def test_tail_audit_masks_subjects(bus: Bus) -> None:
    """The audit record of an inquiry shows its subject masked, unmasked on request."""
    national_id = _person()["national_id"]
    asked = _ask_person(bus, "--json", "--subject", f"PERSON:{national_id}")
    inquiry_id = json.loads(asked.stdout)["inquiry_id"]
    common = ("--from-beginning", "--inquiry", inquiry_id, "--limit", "1", "--json")
    masked = json.loads(_run(bus, "tail", "audit", *common).stdout)
    assert (masked["event"], masked["kind"]) == ("SETTLED", "ANSWERED")
    assert masked["subject"] == {
        "kind": "PERSON",
        "id": national_id[:2] + "******" + national_id[-2:],
    }
    plain = json.loads(_run(bus, "tail", "audit", *common, "--show-subject").stdout)
    assert plain["subject"]["id"] == national_id


def test_desk_answer_reaches_the_requester_as_manual(bus: Bus) -> None:
    """A deferred inquiry is listed on the TAX desk; answered there, its requester gets
    ANSWERED with answered_by MANUAL and the desk is empty again."""
    taxpayer = next(t for t in build_registers().taxpayers.values() if t.under_review)
    case = f"COMPANIES-{uuid.uuid4().hex[:6]}"
    payload = {"taxpayer_kind": taxpayer.kind, "taxpayer_id": taxpayer.taxpayer_id}
    args = [
        "inquire", "tax.clearance.status.v1",
        "--as", "COMPANIES/registration",
        "--purpose", "company-dissolution",
        "--payload", json.dumps(payload),
        "--case-reference", case,
        "--deadline", "90", "--timeout", "90", "--json",
    ]  # fmt: skip
    waiting = subprocess.Popen(
        _command(*args), env=bus.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        listed = _wait_on_desk(bus, case)
        assert listed["payload"]["taxpayer_id"] == taxpayer.taxpayer_id
        assert listed["requester"] == "COMPANIES/registration"
        answered = _run(
            bus, "desk", "answer", listed["inquiry_id"], "--agency", "TAX", "--status", "FOUND",
            "--payload", json.dumps({
                "taxpayer_id": taxpayer.taxpayer_id, "cleared": True,
                "certificate_number": "TC-1404-A000001", "certificate_valid_until": "2027-03-20",
                "principal_owed": "0", "penalties_owed": "0", "total_owed": "0",
                "open_assessments": 0, "checked_at": "2026-03-21T10:00:00Z",
            }),
        )  # fmt: skip
        assert answered.returncode == 0, answered.stderr
        out, err = waiting.communicate(timeout=TIMEOUT)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err
    outcome = json.loads(out)
    assert (outcome["kind"], outcome["answered_by"]) == ("ANSWERED", "MANUAL")
    assert outcome["payload"]["certificate_number"] == "TC-1404-A000001"
    left = json.loads(_run(bus, "desk", "list", "--agency", "TAX", "--json").stdout)
    assert all(entry["case_reference"] != case for entry in left)


def _wait_on_desk(bus: Bus, case: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = _run(bus, "desk", "list", "--agency", "TAX", "--json")
        assert listed.returncode == 0, listed.stderr
        for entry in json.loads(listed.stdout):
            if entry["case_reference"] == case:
                return dict(entry)
        time.sleep(0.5)
    raise AssertionError(f"case {case} never reached the TAX desk")


def test_provide_serves_metrics_and_stops_on_sigterm(bus: Bus) -> None:
    """`exchange provide` counts what it handled on /metrics and exits 0 on SIGTERM."""
    assert _ask_person(bus).returncode == 0
    with urllib.request.urlopen(bus.metrics_url, timeout=10) as response:
        text = response.read().decode()
    assert 'exchange_provider_handled_total{agency="NOCR"' in text
    bus.provide.send_signal(signal.SIGTERM)
    assert bus.provide.wait(timeout=60) == 0
