"""The soap connector passes the conformance kit against a real SOAP server (spyne)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connectors._config import parse_config
from connectors.soap import SoapConfig, SoapConnector
from connectors.testkit import (
    ConformanceCase,
    ConnectorHarness,
    LegacyProcess,
    check_answers,
    check_outage,
    free_port,
)
from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parent / "legacy" / "civil_registry.py"
CONFIG = """
kind: soap
name: nocr-registry
agency: NOCR
concurrency: 8
retry: {attempts: 5, initial_backoff: 0.05, max_backoff: 0.5, jitter: 0.05}
circuit: {failure_threshold: 2, probe_interval: 0.3, max_probe_interval: 1.0, check_timeout: 1.0}
wsdl: http://127.0.0.1:{port}/?wsdl
timeout: 2.0
services:
  - service: nocr.person.verify.v1
    operation: VerifyPerson
    arguments:
      national_id: $payload.national_id
      birth_date: $payload.birth_date
      first_name: $payload.first_name
      last_name: $payload.last_name
    not_found_faults: [Client.NotFound]
    response:
      national_id: $payload.national_id
      national_id_status:
        {$from: result.Status, $map: {ACTIVE: VALID, REVOKED: REVOKED}, $default: UNKNOWN}
      birth_date_match: $result.BirthDateMatches
      first_name_match: $result.FirstNameMatch
      last_name_match: $result.LastNameMatch
      alive: $result.Alive
      verified_at: $now
"""
PERSON = {
    "national_id": "0012345678",
    "birth_date": "1990-03-21",
    "first_name": "Sara",
    "last_name": "ahmadi",
}


@pytest.fixture
def legacy() -> Iterator[LegacyProcess]:
    with LegacyProcess([str(LEGACY), str(port := free_port())], port) as running:
        yield running


def _case(legacy: LegacyProcess) -> ConformanceCase:
    import datetime as dt

    raw = yaml.safe_load(CONFIG.replace("{port}", str(legacy.port)))
    person = {**PERSON, "birth_date": dt.date(1990, 3, 21)}
    return ConformanceCase(
        connector=SoapConnector(parse_config(raw, SoapConfig)),
        legacy=legacy,
        service="nocr.person.verify.v1",
        found=person,
        expect={
            "national_id_status": "VALID",
            "birth_date_match": True,
            "first_name_match": "EXACT",
            "last_name_match": "SIMILAR",
            "alive": True,
        },
        not_found={**person, "national_id": "9999999999"},
        refused={**person, "national_id": "12AB"},
        refused_code="Client.InvalidId",
        long_deadline=25.0,
    )


async def test_soap_connector_conformance(bus: ExchangeSettings, legacy: LegacyProcess) -> None:
    """Answers, NOT_FOUND and ERROR from SOAP faults; an outage pauses intake, loses nothing."""
    async with ConnectorHarness(_case(legacy), bus) as harness:
        answers = await check_answers(harness)
        outage = await check_outage(harness)
    print({**answers, **outage})
