"""A provider's logs name inquiries by id and never carry payloads or personal identifiers.

One provider (in this process) reads three records from ``<p>.in.NOCR`` on the real broker, as
the stream workers would route them: an inquiry it answers (its handler logs a line, as user
code does), an inquiry whose handler fails on a lookup keyed by the national id, and bytes that
are no request at all. structlog's ``capture_logs`` keeps every event (with the contextvars
merged in, as the production processors do), and the tests read them rendered as the JSON
renderer would, tracebacks included.

The provider has no seam to hand it records without Kafka, hence the broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Coroutine, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import structlog
from _worker_proc import bus_settings, create_bus_topics
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from samples import PERSON, verdict

from exchange import Answer, ExchangeSettings, Inquiry, InquirySpec, Provider
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder
from exchange._kafka import client_options, resolve_bootstrap
from exchange._topology import Topics

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
MISSING = {**PERSON, "national_id": "0098765432", "last_name": "Karimi"}
SUBJECT = ("PERSON", "P-88127731")
END_USER = "officer-4711"
#: Values that must never reach a log line: payload values, the subject and end-user ids.
PERSONAL = [
    "0012345678", "1990-03-21", "Sara", "Ahmadi", "0098765432", "Karimi", SUBJECT[1], END_USER,
]  # fmt: skip
#: Not a request: the single-object marker, an unknown fingerprint, then personal data.
GARBAGE = b"\xc3\x01" + bytes(8) + b"0012345678 Sara Ahmadi"
T = TypeVar("T")


@dataclass
class Logged:
    """What the provider logged while handling the three records."""

    events: list[MutableMapping[str, Any]]
    answered_id: str
    failed_id: str

    def rendered(self, *, tracebacks: bool) -> list[str]:
        """Each event as the JSON renderer writes it (exception text only if ``tracebacks``)."""
        lines = []
        for captured in self.events:
            event: MutableMapping[str, Any] = dict(captured)
            if tracebacks:
                event = structlog.processors.format_exc_info(None, "", event)
            else:
                event.pop("exc_info", None)
            lines.append(json.dumps(event, default=str))
        return lines

    def named(self, name: str) -> list[MutableMapping[str, Any]]:
        """The events called ``name``."""
        return [event for event in self.events if event["event"] == name]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a thread of its own, so pytest-asyncio's loop stays untouched."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def logged(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """The provider's captured events for an answered, a failed and an undecodable record."""
    base = ExchangeSettings(
        kafka_bootstrap=kafka_bootstrap,
        state_dir=tmp_path_factory.mktemp("state"),
        topic_prefix=f"logs-{uuid.uuid4().hex[:8]}",
    )
    settings = bus_settings(base, partitions=1)
    _run(create_bus_topics(settings, ["TAX", "NOCR"]))
    saved = structlog.get_config()
    # Whatever an earlier test configured, keep every level while capturing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as events:
            answered_id, failed_id = _run(_handle_three(settings))
        yield Logged(events, answered_id, failed_id)
    finally:
        structlog.configure(**saved)


async def _handle_three(settings: ExchangeSettings) -> tuple[str, str]:
    registry = CollectorRegistry()
    provider = Provider(agency="NOCR", settings=settings, registry=registry)
    register = {PERSON["national_id"]: "VALID"}

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        structlog.get_logger("nocr.register").info("register lookup")
        status = register[inquiry.payload["national_id"]]  # KeyError for an unknown person
        return Answer.found(verdict(inquiry.payload["national_id"], status))

    async with provider:
        answered, failed = await _write_requests(settings, [PERSON, MISSING])
        await _wait(registry, handled=2, dead=1)
    return answered, failed


async def _write_requests(settings: ExchangeSettings, payloads: list[dict[str, Any]]) -> list[str]:
    """Write requests to ``in.NOCR`` as the workers route them, then the garbage record."""
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    codec = Codec(SchemaStore.from_directory(settings.schemas_path))
    encoder = RequestEncoder(catalog, codec, "TAX", "registration", reply_to=None)
    topic = Topics.for_settings(settings).in_("NOCR")
    producer = AIOKafkaProducer(
        bootstrap_servers=resolve_bootstrap(settings), **client_options(settings)
    )
    await producer.start()
    try:
        ids = []
        for payload in payloads:
            spec = InquirySpec(VERIFY, payload, "tax-registration", None, END_USER, SUBJECT)
            item = encoder.encode(spec)
            await producer.send_and_wait(topic, item.value, key=item.key, headers=item.headers)
            ids.append(item.key_text)
        await producer.send_and_wait(topic, GARBAGE, key=b"garbage")
    finally:
        await producer.stop()
    return ids


async def _wait(registry: CollectorRegistry, *, handled: int, dead: int) -> None:
    deadline = time.monotonic() + 60.0
    while True:
        done = sum(
            registry.get_sample_value(
                "exchange_provider_handled_total",
                {"agency": "NOCR", "service": VERIFY, "result": result, "mode": "automatic"},
            )
            or 0
            for result in ("FOUND", "ERROR")
        )
        dlq = sum(
            registry.get_sample_value(
                "exchange_dlq_records_total", {"component": "provider", "reason": reason}
            )
            or 0
            for reason in ("unknown-schema", "bad-framing", "schema-mismatch")
        )
        if done >= handled and dlq >= dead:
            return
        assert time.monotonic() < deadline, f"handled {done}, dead-lettered {dlq}"
        await asyncio.sleep(0.1)


def test_a_failed_handler_is_logged_with_inquiry_id_and_service(logged: Logged) -> None:
    """The provider's warning about a raising handler names the inquiry and the service."""
    (event,) = logged.named("handler raised")
    assert (event["inquiry_id"], event["service"]) == (logged.failed_id, VERIFY)


def test_a_dead_letter_is_logged_with_its_reason_not_its_bytes(logged: Logged) -> None:
    """The dead-letter warning says why and where, and nothing of the record's content."""
    (event,) = logged.named("dead-lettered")
    assert event["reason"] == "unknown-schema"
    assert "0012345678" not in json.dumps(event, default=str)


def test_log_fields_carry_no_payload_or_personal_identifier(logged: Logged) -> None:
    """No logged field holds a payload value, the subject id or the end-user id."""
    text = "\n".join(logged.rendered(tracebacks=False))
    assert [value for value in PERSONAL if value in text] == []


def test_exception_text_in_logs_carries_no_personal_identifier(logged: Logged) -> None:
    """A handler's exception is logged without its message, which may hold payload values."""
    text = "\n".join(logged.rendered(tracebacks=True))
    assert [value for value in PERSONAL if value in text] == []


def test_handler_logs_carry_the_inquiry_context(logged: Logged) -> None:
    """A line the handler logs carries inquiry_id, agency and service from the provider."""
    lookups = logged.named("register lookup")
    assert len(lookups) == 2
    seen = {(e.get("inquiry_id"), e.get("agency"), e.get("service")) for e in lookups}
    assert seen == {(logged.answered_id, "NOCR", VERIFY), (logged.failed_id, "NOCR", VERIFY)}
