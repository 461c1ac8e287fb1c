"""The rest connector passes the conformance kit against a real HTTP server."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from connectors._config import parse_config
from connectors.rest import RestConfig, RestConnector
from connectors.testkit import (
    ConformanceCase,
    ConnectorHarness,
    LegacyProcess,
    check_answers,
    check_outage,
    free_port,
)
from exchange import ExchangeSettings, OutcomeKind
from exchange._errors import RetriableError
from exchange._topology import Topics
from exchange._wire import HEADER_DLQ_REASON, header_value
from exchange.testing import make_inquiry

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parent / "legacy" / "address_api.py"
TOKEN = "s3cret-token"
CONFIG = """
kind: rest
name: post-address
agency: POST
concurrency: 8
retry: {attempts: 5, initial_backoff: 0.05, max_backoff: 0.5, jitter: 0.05}
circuit: {failure_threshold: 2, probe_interval: 0.3, max_probe_interval: 1.0, check_timeout: 1.0}
base_url: http://127.0.0.1:{port}
timeout: 2.0
auth: {type: bearer, token: "${ADDRESS_API_TOKEN}"}
services:
  - service: post.address.lookup.v1
    path: /v2/addresses/{payload.postal_code}
    response:
      postal_code: $result.code
      province: $result.region.province
      county: $result.region.county
      city: $result.region.city
      street: $result.street
      building_number: $result.number
      floor: $result.floor
      location: {latitude: $result.lat, longitude: $result.lon}
      last_verified_on: {$from: result.verified, $as: date}
"""


@pytest.fixture
def legacy() -> Iterator[LegacyProcess]:
    with LegacyProcess([str(LEGACY), str(port := free_port()), TOKEN], port) as running:
        yield running


def _case(legacy: LegacyProcess, monkeypatch: pytest.MonkeyPatch) -> ConformanceCase:
    monkeypatch.setenv("ADDRESS_API_TOKEN", TOKEN)
    raw = yaml.safe_load(CONFIG.replace("{port}", str(legacy.port)))
    config = parse_config(raw, RestConfig)
    assert isinstance(config, RestConfig)
    return ConformanceCase(
        connector=RestConnector(config),
        legacy=legacy,
        service="post.address.lookup.v1",
        found={"postal_code": "1193653471"},
        expect={
            "province": "Tehran",
            "street": "Valiasr",
            "building_number": "12",
            "location": {"latitude": 35.7, "longitude": 51.4},
            "last_verified_on": dt.date(2024, 5, 1),
            "village": None,
        },
        not_found={"postal_code": "9999999999"},
        refused={"postal_code": "11936-5347"},
        refused_code="HTTP_400",
        long_deadline=18.0,
    )


async def test_rest_connector_conformance(
    bus: ExchangeSettings, legacy: LegacyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers, NOT_FOUND on 404, FAILED on 400; an outage pauses intake and loses nothing."""
    async with ConnectorHarness(_case(legacy, monkeypatch), bus) as harness:
        answers = await check_answers(harness)
        outage = await check_outage(harness)
    print({**answers, **outage})


async def test_a_mapping_bug_dead_letters_the_original_request(
    bus: ExchangeSettings, legacy: LegacyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A response template that cannot render: FAILED / HANDLER_ERROR, and the request's
    original bytes in the DLQ with the reason ``handler-error``."""
    case = _case(legacy, monkeypatch)
    config = case.connector.config
    broken = config.services[0].model_copy(update={"response": {"street": "$reslt.street"}})
    case = dataclasses.replace(
        case,
        connector=RestConnector(config.model_copy(update={"services": (broken,)})),
    )
    async with ConnectorHarness(case, bus) as harness:
        outcome = await harness.ask(case.found)
        assert outcome.kind is OutcomeKind.FAILED
        assert outcome.error_code == "HANDLER_ERROR"
        key = str(outcome.inquiry_id).encode()
        topics = Topics.for_settings(bus)
        [original] = await _records(bus, topics.in_("POST"), key)
        [letter] = await _records(bus, topics.dlq, key)
    assert letter.value == original.value
    assert header_value(letter.headers, HEADER_DLQ_REASON) == b"handler-error"


async def _records(settings: ExchangeSettings, topic: str, key: bytes) -> list[Any]:
    """Every committed record of ``topic`` with ``key``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    found: list[Any] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            found += [r for records in batches.values() for r in records if r.key == key]
    finally:
        await consumer.stop()
    return found


async def test_an_unreachable_system_is_reported_by_path_template_not_filled_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The RetriableError of a failed call names the path template: the filled-in URL can carry
    a personal identifier, and the message is logged and returned as the outcome's error."""
    monkeypatch.setenv("ADDRESS_API_TOKEN", TOKEN)
    config = parse_config(yaml.safe_load(CONFIG.replace("{port}", str(free_port()))), RestConfig)
    assert isinstance(config, RestConfig)
    inquiry = make_inquiry(
        "post.address.lookup.v1",
        {"postal_code": "1193653471"},
        requester="TAX",
        purpose="tax-registration",
    )
    connector = RestConnector(config)
    await connector.start()
    try:
        with pytest.raises(RetriableError) as raised:
            await connector.answer(inquiry, config.services[0])
    finally:
        await connector.close()
    assert "/v2/addresses/{payload.postal_code}" in raised.value.message
    assert "1193653471" not in raised.value.message
