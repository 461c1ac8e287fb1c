"""What ``exchange topics acls --apply`` would change on a cluster (pure).

The cluster's ACLs are read as :class:`ClusterAcl` rows of plain strings (a cluster may hold
bindings of kinds the bus never grants: CLUSTER resources, DENY, ALL); :func:`plan_acls`
compares them with the bindings the catalog implies. Applying only *adds*: a binding on the
cluster that the catalog does not imply is reported, never removed, since it may be an
operator's own grant (a monitoring user, a break-glass admin) that the catalog knows nothing of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from exchange._acls import AclBinding

__all__ = ["AclPlan", "ClusterAcl", "describe_row", "plan_acls"]


class ClusterAcl(NamedTuple):
    """One ACL as the cluster reports it; every field as Kafka's Java enums name it."""

    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission_type: str
    host: str

    @classmethod
    def of(cls, binding: AclBinding) -> ClusterAcl:
        """The row a binding of the bus becomes on the cluster."""
        return cls(
            binding.principal,
            binding.resource_type.value,
            binding.resource_name,
            binding.pattern_type.value,
            binding.operation.value,
            binding.permission_type,
            binding.host,
        )


def describe_row(row: ClusterAcl) -> str:
    """One line: ``User:TAX  ALLOW WRITE  TOPIC exchange.out.TAX (literal)``."""
    where = "" if row.host == "*" else f" from {row.host}"
    return (
        f"{row.principal}  {row.permission_type} {row.operation}  {row.resource_type} "
        f"{row.resource_name} ({row.pattern_type.lower()}){where}"
    )


@dataclass(frozen=True)
class AclPlan:
    """Bindings to create, and those on the cluster in the bus's scope that nothing implies."""

    create: tuple[ClusterAcl, ...]
    unexpected: tuple[ClusterAcl, ...]
    present: int

    @property
    def empty(self) -> bool:
        """Whether the cluster already holds every binding the catalog implies."""
        return not self.create

    def lines(self, *, done: bool = False) -> list[str]:
        """What to create (or, ``done``, what was created), then what is left alone."""
        verb = "granted" if done else "grant"
        lines = [f"{verb}: {describe_row(row)}" for row in self.create]
        if not lines:
            lines.append(f"nothing to do: all {self.present} ACLs the catalog implies are present")
        lines += [
            f"note: not implied by the catalog, left in place: {describe_row(row)}"
            for row in self.unexpected
        ]
        return lines

    def to_json(self) -> dict[str, object]:
        """``create``, ``unexpected`` (lists of Kafka ``AclBinding`` fields) and ``present``."""
        return {
            "create": [row._asdict() for row in self.create],
            "unexpected": [row._asdict() for row in self.unexpected],
            "present": self.present,
        }


def plan_acls(
    desired: Sequence[AclBinding], actual: Iterable[ClusterAcl], *, prefix: str
) -> AclPlan:
    """Compare ``desired`` with the cluster's ``actual`` ACLs.

    A cluster binding counts as *unexpected* when the catalog does not imply it and it is in
    the bus's scope: it names one of the catalog's principals, or a resource under
    ``<prefix>.``.
    """
    wanted = [ClusterAcl.of(b) for b in dict.fromkeys(desired)]
    found = set(actual)
    principals = {row.principal for row in wanted}
    scoped = [
        row
        for row in sorted(found - set(wanted))
        if row.principal in principals or row.resource_name.startswith(f"{prefix}.")
    ]
    return AclPlan(
        create=tuple(row for row in wanted if row not in found),
        unexpected=tuple(scoped),
        present=sum(row in found for row in wanted),
    )
