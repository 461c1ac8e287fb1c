"""ACLs from the catalog: each agency its own topics only; workers and operator their roles."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from exchange._acls import (
    AclBinding,
    Operation,
    PatternType,
    Principals,
    ResourceType,
    agency_acls,
    catalog_acls,
    render_commands,
    to_json,
)
from exchange._catalog import Catalog, load_catalog
from exchange._topology import Topics

ROOT = Path(__file__).resolve().parents[2]
T = Topics("bus")
R, W, D = Operation.READ, Operation.WRITE, Operation.DESCRIBE


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")


def grants(acls: list[AclBinding], principal: str) -> set[tuple[str, str, str, str]]:
    """(resource type, name, pattern, operation) of every binding of ``principal``."""
    return {
        (a.resource_type.value, a.resource_name, a.pattern_type.value, a.operation.value)
        for a in acls
        if a.principal == principal
    }


def test_a_requester_writes_its_out_topic_and_reads_its_in_and_replies() -> None:
    """An agency that provides nothing gets exactly its three topics, its durable reply
    readers' groups and transactional ids, no dlq."""
    acls = agency_acls(T, "MCLS", "User:MCLS", provider=False)
    assert grants(acls, "User:MCLS") == {
        ("TOPIC", "bus.out.MCLS", "LITERAL", "WRITE"),
        ("TOPIC", "bus.out.MCLS", "LITERAL", "DESCRIBE"),
        ("TOPIC", "bus.in.MCLS", "LITERAL", "READ"),
        ("TOPIC", "bus.in.MCLS", "LITERAL", "DESCRIBE"),
        ("TOPIC", "bus.replies.MCLS", "LITERAL", "READ"),
        ("TOPIC", "bus.replies.MCLS", "LITERAL", "DESCRIBE"),
        ("GROUP", "bus.requester.MCLS.", "PREFIXED", "READ"),
        ("TRANSACTIONAL_ID", "bus.requester.MCLS.", "PREFIXED", "WRITE"),
        ("TRANSACTIONAL_ID", "bus.requester.MCLS.", "PREFIXED", "DESCRIBE"),
    }


def test_a_provider_also_gets_its_desk_the_dlq_and_its_consumer_groups() -> None:
    """Providers read/write their desk, dead-letter, read their groups and own the
    transactional ids under their group prefix."""
    acls = agency_acls(T, "TAX", "User:TAX", provider=True)
    extra = grants(acls, "User:TAX") - grants(
        agency_acls(T, "TAX", "User:TAX", provider=False), "User:TAX"
    )
    assert extra == {
        ("TOPIC", "bus.desk.TAX", "LITERAL", "READ"),
        ("TOPIC", "bus.desk.TAX", "LITERAL", "WRITE"),
        ("TOPIC", "bus.desk.TAX", "LITERAL", "DESCRIBE"),
        ("TOPIC", "bus.dlq", "LITERAL", "WRITE"),
        ("TOPIC", "bus.dlq", "LITERAL", "DESCRIBE"),
        ("GROUP", "bus.provider.TAX", "LITERAL", "READ"),
        ("GROUP", "bus.provider.TAX.", "PREFIXED", "READ"),
        ("TRANSACTIONAL_ID", "bus.provider.TAX.", "PREFIXED", "WRITE"),
        ("TRANSACTIONAL_ID", "bus.provider.TAX.", "PREFIXED", "DESCRIBE"),
    }


def test_no_agency_may_touch_another_agencys_topics(demo: Catalog) -> None:
    """Every agency binding names its own topic, group or the shared dlq; nothing prefixed
    covers another agency (TAX's group prefix does not cover TAX-OFFICE's groups)."""
    acls = catalog_acls(demo, T, Principals())
    for agency in demo.agencies:
        own = {T.out(agency.code), T.in_(agency.code), T.replies(agency.code), T.desk(agency.code)}
        own |= {T.dlq, T.provider_group(agency.code)}
        for resource, name, pattern, _op in grants(acls, f"User:{agency.code}"):
            if pattern == "PREFIXED":
                assert resource in {"GROUP", "TRANSACTIONAL_ID"}
                assert name in {
                    f"{T.provider_group(agency.code)}.",
                    T.requester_group(agency.code, ""),
                }
            else:
                assert name in own


def test_only_the_agency_writes_its_out_topic_and_only_it_reads_its_in_and_replies(
    demo: Catalog,
) -> None:
    """Among agencies, out.A is written only by A; in.A and replies.A read only by A."""
    acls = catalog_acls(demo, T, Principals())
    agencies = [
        a for a in acls if a.principal.removeprefix("User:") in {x.code for x in demo.agencies}
    ]
    for agency in demo.agencies:
        writers = {
            a.principal
            for a in agencies
            if a.resource_name == T.out(agency.code) and a.operation is W
        }
        readers = {
            a.principal
            for a in agencies
            if a.resource_name in {T.in_(agency.code), T.replies(agency.code)} and a.operation is R
        }
        assert writers == readers == {f"User:{agency.code}"}


def test_workers_read_every_out_and_write_every_in_and_replies_by_prefix(demo: Catalog) -> None:
    """Worker bindings are prefixed, so a new agency needs no new worker ACL."""
    acls = catalog_acls(demo, T, Principals(worker="User:w"))
    worker = grants(acls, "User:w")
    assert ("TOPIC", "bus.out.", "PREFIXED", "READ") in worker
    assert ("TOPIC", "bus.in.", "PREFIXED", "WRITE") in worker
    assert ("TOPIC", "bus.replies.", "PREFIXED", "WRITE") in worker
    assert ("TOPIC", "bus.out.", "PREFIXED", "WRITE") not in worker
    # The engine's transactional ids are <group>-<partition>; its group is exactly one.
    assert ("TRANSACTIONAL_ID", "bus.workers-", "PREFIXED", "WRITE") in worker
    assert ("GROUP", "bus.workers", "LITERAL", "READ") in worker
    for topic in ("bus.audit", "bus.state"):
        assert {("TOPIC", topic, "LITERAL", op) for op in ("READ", "WRITE")} <= worker
    assert not any(name.startswith("bus.evaluation") for _, name, _, _ in worker)


def test_the_evaluation_processor_reads_audit_and_owns_its_figures_and_faust_topics(
    demo: Catalog,
) -> None:
    """The evaluation principal reads audit, writes compliance, creates faust's own topics
    under <prefix>.evaluation-, and can neither route nor read agencies' topics."""
    evaluation = grants(catalog_acls(demo, T, Principals(evaluation="User:ev")), "User:ev")
    assert ("TOPIC", "bus.audit", "LITERAL", "READ") in evaluation
    assert ("TOPIC", "bus.audit", "LITERAL", "WRITE") not in evaluation
    assert ("TOPIC", "bus.compliance", "LITERAL", "WRITE") in evaluation
    assert ("TOPIC", "bus.evaluation-", "PREFIXED", "CREATE") in evaluation
    assert ("GROUP", "bus.evaluation", "LITERAL", "READ") in evaluation
    assert not any(".out." in name or ".in." in name for _, name, _, _ in evaluation)


def test_operator_administers_the_prefix_and_owns_the_replay_transactional_id(
    demo: Catalog,
) -> None:
    """The operator creates/alters topics under the prefix and replays transactionally."""
    operator = grants(catalog_acls(demo, T, Principals(operator="User:op")), "User:op")
    for op in ("CREATE", "ALTER", "ALTER_CONFIGS", "DESCRIBE_CONFIGS", "READ", "WRITE"):
        assert ("TOPIC", "bus.", "PREFIXED", op) in operator
    assert ("TRANSACTIONAL_ID", "bus.dlq-replay", "LITERAL", "WRITE") in operator


def test_agency_principal_template() -> None:
    """The agency principal is a template on the agency code."""
    assert Principals(agency="User:agency-{agency}").of_agency("TAX") == "User:agency-TAX"


def test_commands_merge_operations_per_resource_and_quote_names() -> None:
    """One kafka-acls.sh line per principal and resource, operations in CLI spelling."""
    bindings = [
        AclBinding("User:A B", ResourceType.TOPIC, "bus.out.A", PatternType.LITERAL, W),
        AclBinding("User:A B", ResourceType.TOPIC, "bus.out.A", PatternType.LITERAL, D),
        AclBinding(
            "User:A B", ResourceType.GROUP, "g.", PatternType.PREFIXED, Operation.DESCRIBE_CONFIGS
        ),
        AclBinding("User:A B", ResourceType.TRANSACTIONAL_ID, "t", PatternType.LITERAL, W),
    ]
    lines = render_commands(bindings, bootstrap="b:9092", command_config="admin.properties")
    head = "kafka-acls.sh --bootstrap-server b:9092 --command-config admin.properties --add "
    assert all(line.startswith(head) for line in lines)
    assert [shlex.split(line.removeprefix(head)) for line in lines] == [
        ["--allow-principal", "User:A B", "--operation", "Write", "--operation", "Describe",
         "--topic", "bus.out.A", "--resource-pattern-type", "literal"],
        ["--allow-principal", "User:A B", "--operation", "DescribeConfigs",
         "--group", "g.", "--resource-pattern-type", "prefixed"],
        ["--allow-principal", "User:A B", "--operation", "Write",
         "--transactional-id", "t", "--resource-pattern-type", "literal"],
    ]  # fmt: skip


def test_json_uses_kafkas_acl_binding_field_names() -> None:
    """JSON bindings carry principal, host, resource and pattern type, operation, permission."""
    (row,) = to_json([AclBinding("User:A", ResourceType.TOPIC, "t", PatternType.LITERAL, R)])
    assert row == {
        "principal": "User:A",
        "resource_type": "TOPIC",
        "resource_name": "t",
        "pattern_type": "LITERAL",
        "operation": "READ",
        "permission_type": "ALLOW",
        "host": "*",
    }


def test_acls_command_prints_one_line_per_resource_and_json_per_binding() -> None:
    """`exchange topics acls` needs no broker: commands by default, every binding with --json."""
    from typer.testing import CliRunner

    from exchange.cli._app import app

    env = {
        "EXCHANGE_TOPIC_PREFIX": "bus",
        "EXCHANGE_CATALOG_PATH": str(ROOT / "catalog" / "demo"),
        "EXCHANGE_SCHEMAS_PATH": str(ROOT / "schemas"),
        "EXCHANGE_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never contacted
    }
    runner = CliRunner()
    text = runner.invoke(app, ["topics", "acls", "--worker-principal", "User:w"], env=env)
    data = runner.invoke(app, ["topics", "acls", "--json"], env=env)
    assert text.exit_code == data.exit_code == 0, text.output
    commands = [line for line in text.stdout.splitlines() if line.startswith("kafka-acls.sh")]
    demo = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
    bindings = catalog_acls(demo, T, Principals(worker="User:w"))
    assert commands == render_commands(bindings)
    assert len(json.loads(data.stdout)) == len(bindings)
