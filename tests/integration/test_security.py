"""The security model on a real secured broker: SASL/SCRAM over TLS, Kafka's authorizer, and
the ACLs ``exchange topics acls --apply`` creates from the demo catalog.

One broker for the module (its own ports, data dir and TLS files): the catalog's ACLs are
applied once by the ``admin`` super user and its topics created by the operator; each test
then acts as one principal.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _worker_proc import bus_settings, running_worker
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from samples import PERSON, VERDICT
from secured_broker import ADMIN, SecuredBroker
from typer.testing import CliRunner, Result

from exchange import (
    Answer,
    AuthenticationError,
    AuthorizationError,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    OutcomeKind,
    Provider,
    TlsError,
)
from exchange._audit_io import read_audit_trail
from exchange._codec import Codec, SchemaStore
from exchange._compliance_samples import sample_audit_record
from exchange._compliance_source import read_compliance
from exchange._kafka import kafka_options, translate_kafka_error
from exchange._local_broker_security import write_tls_files
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD
from exchange.cli._app import app

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"
WORKER = "exchange-worker"
OPERATOR = "exchange-operator"
EVALUATION = "exchange-evaluation"
USERS = ["TAX", "NOCR", WORKER, OPERATOR, EVALUATION]
#: faust's start (join, changelog topics, recovery) on two busy cores, plus one publish.
EVALUATION_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """The module's secured broker, stopped after its last test."""
    broker = SecuredBroker.start(tmp_path_factory.mktemp("secured-kafka"), users=USERS)
    print(f"secured broker started in {broker.start_seconds:.1f} s")  # shown with -s
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def base(secured: SecuredBroker, tmp_path_factory: pytest.TempPathFactory) -> ExchangeSettings:
    """The module's bus (demo catalog, two partitions): the catalog's ACLs applied by the
    admin (``exchange topics acls --apply``), then its topics created by the operator under
    those ACLs alone (``exchange topics apply``)."""
    plain = ExchangeSettings(
        kafka_bootstrap=secured.bootstrap,
        state_dir=tmp_path_factory.mktemp("state"),
        topic_prefix="secured",
    )
    settings = bus_settings(plain)
    applied = _topics_cli(secured, settings, ADMIN, "acls", "--apply")
    assert applied.exit_code == 0, applied.output
    assert "granted: User:TAX  ALLOW WRITE  TOPIC secured.out.TAX (literal)" in applied.stdout
    created = _topics_cli(secured, settings, OPERATOR, "apply")
    assert created.exit_code == 0, created.output
    assert f"created {Topics(settings.topic_prefix).out('NOCR')}" in created.stdout
    return settings


def _acls_cli(secured: SecuredBroker, settings: ExchangeSettings, user: str, *args: str) -> Result:
    return _topics_cli(secured, settings, user, "acls", *args)


def _topics_cli(
    secured: SecuredBroker, settings: ExchangeSettings, user: str, *args: str
) -> Result:
    env = {
        **secured.env(user),
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_CATALOG_PATH": str(settings.catalog_path),
        "EXCHANGE_SCHEMAS_PATH": str(settings.schemas_path),
    }
    env["EXCHANGE_PARTITIONS"] = str(settings.partitions)
    return CliRunner().invoke(app, ["topics", *args], env=env)


def test_applying_again_changes_nothing_and_plan_agrees(
    secured: SecuredBroker, base: ExchangeSettings
) -> None:
    """--apply is idempotent and --plan shows no difference once the ACLs are in place."""
    again = _acls_cli(secured, base, ADMIN, "--apply")
    plan = _acls_cli(secured, base, ADMIN, "--plan")
    assert again.exit_code == plan.exit_code == 0, again.output + plan.output
    assert again.stdout.startswith("nothing to do: all ")
    assert plan.stdout.startswith("nothing to do: all ")


def test_an_agency_may_not_alter_acls(secured: SecuredBroker, base: ExchangeSettings) -> None:
    """Only a principal with ALTER on the cluster may apply ACLs: an agency gets exit 1 and a
    one-line authorization error, not a traceback."""
    refused = _acls_cli(secured, base, "TAX", "--plan")
    assert isinstance(refused.exception, AuthorizationError), refused.output
    assert "not authorized (cluster" in refused.exception.message


async def test_an_inquiry_is_routed_and_answered_with_each_party_on_its_own_credentials(
    secured: SecuredBroker, base: ExchangeSettings
) -> None:
    """TAX asks, the worker routes, NOCR answers, each with its own SCRAM user over TLS
    verified against the test CA, under the catalog's ACLs alone: the outcome is ANSWERED."""
    seen: list[Inquiry] = []
    nocr = Provider(agency="NOCR", settings=secured.settings(base, "NOCR"))

    @nocr.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        seen.append(inquiry)
        return Answer.found(VERDICT)

    worker_settings = secured.settings(base, WORKER)
    with running_worker(worker_settings, env=secured.env(WORKER)) as worker:
        try:
            async with (
                nocr,
                ExchangeClient(
                    agency="TAX", subsystem="registration", settings=secured.settings(base, "TAX")
                ) as client,
            ):
                outcome = await client.inquire(VERIFY, PERSON, purpose=PURPOSE, timeout=60)
        finally:
            print(worker.log())  # shown with a failure only
    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    assert [inquiry.requester for inquiry in seen] == ["TAX"]


async def test_an_agency_cannot_act_as_another_agency(
    secured: SecuredBroker, base: ExchangeSettings
) -> None:
    """With TAX's credentials the SDK cannot read NOCR's replies (a client as NOCR), take
    NOCR's inquiries (a provider as NOCR) or read the audit trail: each is refused at once
    with AuthorizationError naming what was refused."""
    tax = secured.settings(base, "TAX")
    async with asyncio.timeout(30):  # refused, not hung
        with pytest.raises(AuthorizationError) as as_client:
            await ExchangeClient(agency="NOCR", settings=tax).start()
        with pytest.raises(AuthorizationError):
            await Provider(agency="NOCR", settings=tax).start()
        with pytest.raises(AuthorizationError) as audit:
            await read_audit_trail(tax, SchemaStore.from_directory(tax.schemas_path))
    assert as_client.value.resource == "topic secured.replies.NOCR"
    assert "secured.audit" in audit.value.message


@pytest.mark.parametrize("user", ["TAX", WORKER])
async def test_only_the_agency_itself_may_write_its_out_topic(
    secured: SecuredBroker, base: ExchangeSettings, user: str
) -> None:
    """Neither another agency nor the workers may write NOCR's out topic (the topic a record
    came from authenticates its writer): the broker refuses the write."""
    topic = Topics(base.topic_prefix).out("NOCR")
    producer = AIOKafkaProducer(**kafka_options(secured.settings(base, user)), acks="all")
    await producer.start()
    try:
        async with asyncio.timeout(30):
            with pytest.raises(KafkaError) as refused:
                await producer.send_and_wait(topic, b"forged", key=b"k")
    finally:
        await producer.stop()
    error = translate_kafka_error(refused.value, f"cannot write to {topic}")
    assert isinstance(error, AuthorizationError)
    assert error.resource == f"topic {topic}"


async def test_a_wrong_password_is_an_authentication_error(
    secured: SecuredBroker, base: ExchangeSettings
) -> None:
    """A refused SCRAM password surfaces as AuthenticationError, not "cannot bootstrap"."""
    wrong = secured.settings(base, "TAX", password="not-the-password")
    with pytest.raises(AuthenticationError, match="authentication failed"):
        await ExchangeClient(agency="TAX", settings=wrong).start()


async def test_a_broker_certificate_from_another_ca_is_a_tls_error(
    secured: SecuredBroker, base: ExchangeSettings, tmp_path: Path
) -> None:
    """Trusting another CA than the one that signed the broker's certificate: TlsError."""
    other = write_tls_files(tmp_path / "other-ca").ca_cert
    untrusting = secured.settings(base, "TAX", cafile=other)
    with pytest.raises(TlsError, match="CERTIFICATE_VERIFY_FAILED"):
        await ExchangeClient(agency="TAX", settings=untrusting).start()


async def test_the_evaluation_processor_counts_the_audit_trail_under_its_own_acls(
    secured: SecuredBroker, base: ExchangeSettings, tmp_path: Path
) -> None:
    """`exchange evaluation run` as the evaluation principal reads the audit trail, creates
    its own faust topics and publishes figures covering a record written to the trail."""
    codec = Codec(SchemaStore.from_directory(base.schemas_path / "envelope"))
    record = sample_audit_record(recorded_at_ms=round(time.time() * 1000))
    producer = AIOKafkaProducer(**kafka_options(secured.settings(base, ADMIN)), acks="all")
    await producer.start()
    try:  # written by the admin: only the workers' principal may write audit
        written = await producer.send_and_wait(
            Topics(base.topic_prefix).audit, codec.encode(AUDIT_RECORD, record), key=b"k"
        )
    finally:
        await producer.stop()
    evaluation = secured.settings(base, EVALUATION)
    log = (tmp_path / "evaluation.log").open("w+b")
    env = {
        **os.environ,
        **secured.env(EVALUATION),
        "EXCHANGE_TOPIC_PREFIX": base.topic_prefix,
        "EXCHANGE_STATE_DIR": str(tmp_path / "state"),
        "EXCHANGE_LOG_FORMAT": "json",
    }
    args = ["evaluation", "run", "--web-port", str(_free_port()), "--publish-interval", "0.3"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from exchange.cli import main; main()", *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        covered = await _covered(evaluation, written.partition, written.offset, proc)
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()
        log.seek(0)
        print(log.read().decode(errors="replace")[-6000:])  # shown with a failure only
        log.close()
    assert covered, "the evaluation processor never published figures covering the record"


async def _covered(
    settings: ExchangeSettings, partition: int, offset: int, proc: asyncio.subprocess.Process
) -> bool:
    """Whether the published coverage of ``partition`` reaches ``offset`` in time."""
    deadline = time.monotonic() + EVALUATION_TIMEOUT
    while time.monotonic() < deadline and proc.returncode is None:
        coverage = (await read_compliance(settings)).coverage.get(partition)
        if coverage is not None and coverage.through_offset >= offset:
            return True
        await asyncio.sleep(0.5)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
