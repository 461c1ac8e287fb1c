"""Planning ACLs against a cluster: create what is missing, report (never remove) the rest."""

from __future__ import annotations

from exchange._acls import AclBinding, Operation, PatternType, Principals, ResourceType, worker_acls
from exchange._acls_plan import ClusterAcl, describe_row, plan_acls
from exchange._topology import Topics

T = Topics("bus")
OUT_A = AclBinding("User:A", ResourceType.TOPIC, "bus.out.A", PatternType.LITERAL, Operation.WRITE)
IN_A = AclBinding("User:A", ResourceType.TOPIC, "bus.in.A", PatternType.LITERAL, Operation.READ)


def test_an_empty_cluster_needs_every_binding_once() -> None:
    """Every desired binding is planned, duplicates once, in the catalog's order."""
    plan = plan_acls([OUT_A, IN_A, OUT_A], [], prefix="bus")
    assert plan.create == (ClusterAcl.of(OUT_A), ClusterAcl.of(IN_A))
    assert (plan.present, plan.empty) == (0, False)


def test_bindings_already_there_are_not_planned_again() -> None:
    """Applying twice changes nothing the second time."""
    plan = plan_acls([OUT_A, IN_A], [ClusterAcl.of(OUT_A), ClusterAcl.of(IN_A)], prefix="bus")
    assert plan.empty
    assert plan.lines() == ["nothing to do: all 2 ACLs the catalog implies are present"]


def test_foreign_bindings_in_scope_are_reported_and_others_ignored() -> None:
    """A cluster binding of a catalog principal, or on a resource under the prefix, that the
    catalog does not imply is reported as unexpected; an unrelated one is not mentioned."""
    stray = ClusterAcl("User:A", "TOPIC", "bus.out.B", "LITERAL", "WRITE", "ALLOW", "*")
    other_user = ClusterAcl("User:mon", "TOPIC", "bus.", "PREFIXED", "DESCRIBE", "ALLOW", "*")
    unrelated = ClusterAcl("User:mon", "CLUSTER", "kafka-cluster", "LITERAL", "ALL", "ALLOW", "*")
    plan = plan_acls([OUT_A], [ClusterAcl.of(OUT_A), stray, other_user, unrelated], prefix="bus")
    assert plan.empty
    assert set(plan.unexpected) == {stray, other_user}
    assert f"note: not implied by the catalog, left in place: {describe_row(stray)}" in (
        plan.lines()
    )


def test_rows_read_like_kafka_acls_output() -> None:
    """One line names principal, permission, operation, resource and pattern."""
    row = ClusterAcl.of(worker_acls(T, Principals().worker)[0])
    assert describe_row(row) == "User:exchange-worker  ALLOW READ  TOPIC bus.out. (prefixed)"


def test_json_lists_rows_with_kafkas_field_names() -> None:
    """JSON: create and unexpected rows as Kafka AclBinding fields, and the count present."""
    data = plan_acls([OUT_A], [], prefix="bus").to_json()
    assert data == {
        "create": [
            {
                "principal": "User:A",
                "resource_type": "TOPIC",
                "resource_name": "bus.out.A",
                "pattern_type": "LITERAL",
                "operation": "WRITE",
                "permission_type": "ALLOW",
                "host": "*",
            }
        ],
        "unexpected": [],
        "present": 0,
    }
