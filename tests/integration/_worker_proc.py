"""A real ``exchange worker`` in a subprocess, for tests that need the bus's stream workers.

::

    await create_bus_topics(settings, ["TAX", "NOCR"])
    with running_worker(settings) as worker:      # returns once it owns every partition
        ...                                       # client, provider, raw records
        worker.terminate()                        # SIGTERM; the seconds it took to exit

The worker logs JSON lines on stderr; a reader thread keeps them, so a test can wait for an
event (``wait_for``), see which partitions the worker owns (``assigned``) and print the log
when something fails. Everything is synchronous (``Popen`` and a thread), so the helper works
from sync and async tests and from fixtures of any scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from samples import PERSON, VERDICT

from connectors.testkit._bus import bus_env
from exchange import ExchangeSettings
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import ServiceCache, with_defaults
from exchange._kafka import client_options, resolve_bootstrap
from exchange._topology import TopicKind, TopologyConfig, desired_topics
from exchange._wire import (
    AUDIT_RECORD,
    INQUIRY_OUTCOME,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    RecordType,
    inquiry_headers,
)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "demo"
SCHEMAS = ROOT / "schemas"
#: Python start-up, catalog load, group join and state restore on two busy cores.
START_TIMEOUT = 60.0
Event = dict[str, Any]


def bus_settings(settings: ExchangeSettings, *, partitions: int = 2) -> ExchangeSettings:
    """``settings`` with few partitions and the repository's demo catalog, absolute paths."""
    return settings.model_copy(
        update={"partitions": partitions, "catalog_path": CATALOG, "schemas_path": SCHEMAS}
    )


async def create_bus_topics(settings: ExchangeSettings, agencies: Sequence[str]) -> list[str]:
    """Create the agencies' topics and the bus-wide ones, as ``exchange topics apply`` would."""
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    config = TopologyConfig(prefix=settings.topic_prefix, partitions=settings.partitions)
    specs = [
        spec
        for spec in desired_topics(catalog, config)
        if spec.agency in agencies or (spec.agency is None and spec.kind != TopicKind.COMPLIANCE)
    ]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=resolve_bootstrap(settings), **client_options(settings)
    )
    await admin.start()
    try:
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
            for s in specs
        ]
        response = await admin.create_topics(new)
        failed = [(name, code) for name, code, _ in response.topic_errors if code not in (0, 36)]
        assert not failed, f"could not create topics: {failed}"
        await _wait_for_leaders(admin, [s.name for s in specs])
    finally:
        await admin.close()
    return [s.name for s in specs]


async def _wait_for_leaders(admin: Any, names: list[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            if all(_led(topic) for topic in await admin.describe_topics(names)):
                return
            await asyncio.sleep(0.1)


def _led(topic: dict[str, Any]) -> bool:
    partitions = topic["partitions"]
    led = all(p["leader"] >= 0 for p in partitions)
    return topic["error_code"] == 0 and bool(partitions) and led


class WorkerProcess:
    """One running ``exchange worker`` and what it logged."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self.events: list[Event] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        self.events.append(event)
                self._changed.notify_all()

    def log(self, last: int = 60) -> str:
        """The last lines the worker wrote on stderr, for failure messages."""
        with self._changed:
            return "\n".join(self.lines[-last:])

    def wait_for(self, match: Callable[[Event], bool], timeout: float = START_TIMEOUT) -> Event:
        """The first logged event that matches; AssertionError with the log on timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if match(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(f"the worker never logged the awaited event:\n{self.log()}")

    @property
    def assigned(self) -> set[int]:
        """The partition numbers the worker owns, from its assignment log lines."""
        owned: set[int] = set()
        with self._changed:
            for event in self.events:
                if event.get("event") == "partition assigned":
                    owned.add(event["partition"])
                elif event.get("event") == "partition revoked":
                    owned.discard(event["partition"])
        return owned

    def wait_assigned(self, partitions: set[int], timeout: float = START_TIMEOUT) -> None:
        """Block until the worker owns exactly ``partitions``."""
        deadline = time.monotonic() + timeout
        while self.assigned != partitions:
            if time.monotonic() > deadline or self.popen.poll() is not None:
                raise AssertionError(
                    f"worker owns {sorted(self.assigned)}, not {sorted(partitions)}:\n{self.log()}"
                )
            time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM, wait for the exit; the seconds it took."""
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye to the group."""
        self.popen.kill()
        self.popen.wait(10)

    def close(self) -> None:
        """Kill the worker if it still runs; release its pipe once everything was read."""
        if self.popen.poll() is None:
            self.kill()
        self._reader.join(10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


def exchange_command(*args: str) -> list[str]:
    """The command line of ``exchange *args`` with this interpreter."""
    return [sys.executable, "-c", "from exchange.cli import main; main()", *args]


def worker_command(*args: str) -> list[str]:
    """The command line of ``exchange worker`` with this interpreter."""
    return exchange_command("worker", *args)


@contextlib.contextmanager
def running_worker(
    settings: ExchangeSettings,
    *,
    args: Sequence[str] = (),
    owns: set[int] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Start ``exchange worker`` with ``settings``; yield once it owns ``owns`` (default: every
    partition); kill it on the way out if the test left it running."""
    environment = bus_env(settings, **{"EXCHANGE_LOG_LEVEL": "INFO", **(env or {})})
    popen = subprocess.Popen(
        worker_command(*args), env=environment, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    worker = WorkerProcess(popen)
    try:
        if owns is None:
            owns = set(range(settings.partitions))
        if owns:
            worker.wait_assigned(owns)
        yield worker
    finally:
        worker.close()


# --- raw records: what a client in another language would write ---------------------------------

VERIFY = "nocr.person.verify.v1"
STANDING = "companies.company.standing.v1"
COMPANY = {"national_company_id": "10101234567", "as_of": None}
#: The demo payload of each service used by the tests.
PAYLOADS: dict[str, dict[str, Any]] = {VERIFY: PERSON, STANDING: COMPANY}


class Raw(NamedTuple):
    """One record to write: the inquiry it belongs to, key, value and headers."""

    inquiry_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Records:
    """Builds requests and responses as plain envelope dicts, encoded with the real codec."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self.catalog = load_catalog(settings.catalog_path, settings.schemas_path)
        # No size limit here: the tests write oversized records on purpose.
        self.codec = Codec(
            SchemaStore.from_directory(settings.schemas_path), max_record_bytes=2**30
        )
        self.services = ServiceCache(self.catalog, self.codec)

    def request(
        self,
        service: str = VERIFY,
        *,
        requester: tuple[str, str | None] = ("TAX", "registration"),
        purpose: str = "tax-registration",
        deadline: float = 10.0,
        payload: bytes | None = None,
        inquiry_id: str | None = None,
        key: bytes | None = None,
        reply_to: str = "tap",
        **changes: Any,
    ) -> Raw:
        """A request for ``service`` (its demo payload), ``deadline`` seconds from now."""
        inquiry_id = inquiry_id or str(uuid.uuid4())
        code, _, version = service.rpartition(".v")
        found = self.catalog.service(service)
        provider = (found.provider, found.provider_subsystem) if found else ("NOCR", None)
        if payload is None:
            schemas = self.services.get(service)
            fields = with_defaults(schemas.request_defaults, PAYLOADS[service])
            payload = self.codec.encode(schemas.request, fields)
        now = int(time.time() * 1000)
        envelope = {
            "inquiry_id": inquiry_id,
            "requester": {"agency": requester[0], "subsystem": requester[1]},
            "provider": {"agency": provider[0], "subsystem": provider[1]},
            "service_code": code,
            "service_version": int(version),
            "purpose": purpose,
            "case_reference": "case-1",
            "end_user_id": None,
            "subject": {"kind": "PERSON", "id": "0012345678"},
            "created_at": now,
            "deadline": now + int(deadline * 1000),
            "trace_parent": None,
            "reply_to": reply_to,
            "payload": payload,
            **changes,
        }
        value = self.codec.encode(INQUIRY_REQUEST, envelope)
        headers = inquiry_headers(RecordType.REQUEST, inquiry_id, reply_to=reply_to)
        return Raw(inquiry_id, key or inquiry_id.encode(), value, headers)

    def response(
        self,
        inquiry_id: str,
        service: str = VERIFY,
        *,
        responder: str | None = None,
        status: str = "FOUND",
        payload: dict[str, Any] | None = None,
    ) -> Raw:
        """The provider's response (``responder`` overrides the envelope's claim)."""
        schemas = self.services.get(service)
        found = schemas.service
        body = None
        if status == "FOUND":
            fields = with_defaults(schemas.response_defaults, payload or _RESPONSES[service])
            body = self.codec.encode(schemas.response, fields)
        envelope = {
            "inquiry_id": inquiry_id,
            "responder": {"agency": responder or found.provider, "subsystem": None},
            "service_code": found.code,
            "service_version": found.version,
            "status": status,
            "error": None
            if status != "ERROR"
            else {"code": "DOWN", "message": "register down", "retriable": True},
            "answered_by": "AUTOMATIC",
            "responded_at": int(time.time() * 1000),
            "payload": body,
            "trace_parent": None,
        }
        value = self.codec.encode(INQUIRY_RESPONSE, envelope)
        headers = inquiry_headers(RecordType.RESPONSE, inquiry_id)
        return Raw(inquiry_id, inquiry_id.encode(), value, headers)

    def outcome(self, value: bytes) -> dict[str, Any]:
        """A decoded ``InquiryOutcome``."""
        return self.codec.decode(value, reader=INQUIRY_OUTCOME)

    def audit(self, value: bytes) -> dict[str, Any]:
        """A decoded ``AuditRecord``."""
        return self.codec.decode(value, reader=AUDIT_RECORD)


#: The canned FOUND answer of each service that has one (others answer NOT_FOUND).
_RESPONSES: dict[str, dict[str, Any]] = {VERIFY: VERDICT}


class BusTap:
    """Writes raw records to the bus and reads its output topics at ``read_committed``.

    Every partition of the given topics is read from the beginning in the background; tests
    pick records out by key (every inquiry record is keyed by its inquiry id).
    """

    def __init__(self, settings: ExchangeSettings, topics: Sequence[str]) -> None:
        self._settings = settings
        self._topics = list(topics)
        self.records: dict[str, list[Any]] = {topic: [] for topic in topics}
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BusTap:
        options = {"bootstrap_servers": resolve_bootstrap(self._settings)}
        options.update(client_options(self._settings))
        self._producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=50,
        )
        await self._producer.start()
        await self._consumer.start()
        assigned = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(await self._producer.partitions_for(topic))
        ]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()
        await self._producer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for tp, batch in batches.items():
                self.records[tp.topic].extend(batch)
            if batches:
                self._arrived.set()

    async def send(self, topic: str, *raws: Raw) -> None:
        """Write ``raws`` to ``topic`` and wait until Kafka has them."""
        sent = [
            await self._producer.send(topic, raw.value, key=raw.key, headers=raw.headers)
            for raw in raws
        ]
        await asyncio.gather(*sent)

    async def send_bytes(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Write arbitrary bytes (a malformed record) to ``topic``."""
        await (await self._producer.send(topic, value, key=key))

    def of(self, topic: str, key: str | bytes) -> list[Any]:
        """The records of ``topic`` read so far with this key."""
        wanted = key.encode() if isinstance(key, str) else key
        return [record for record in self.records[topic] if record.key == wanted]

    async def wait(
        self, topic: str, key: str | bytes, *, count: int = 1, within: float = 20.0
    ) -> list[Any]:
        """At least ``count`` records with this key on ``topic``; AssertionError on timeout."""
        try:
            async with asyncio.timeout(within):
                while len(found := self.of(topic, key)) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"{count} record(s) keyed {key!r} never reached {topic}") from None
        return found

    async def quiet(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` pass, so a record that should not come has had time to."""
        await asyncio.sleep(seconds)
