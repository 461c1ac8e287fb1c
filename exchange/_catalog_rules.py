"""Cross-reference rules of the catalog, as one pure function over its entries.

Each rule yields an :class:`Issue` that names the entry (section and position) and the field
at fault, so the YAML loader can point at the very line and :class:`Catalog` can name the
entry when it is built in code. Shape rules (formats, required keys) are the models' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from exchange._catalog_model import Agency, Policy, ServiceSpec

Section = Literal["agencies", "services", "policies"]
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: the entry ``section[index]``, the field at ``path``, and why."""

    section: Section
    index: int
    path: FieldPath
    message: str
    #: For duplicates: the position of the first entry with the same key.
    duplicate_of: int | None = None


def find_issues(
    agencies: Sequence[Agency],
    services: Sequence[ServiceSpec],
    policies: Sequence[Policy],
    *,
    also_agencies: frozenset[str] = frozenset(),
    also_services: frozenset[str] = frozenset(),
) -> list[Issue]:
    """Every cross-reference problem, in file order.

    ``also_agencies`` / ``also_services`` name entries that exist but failed validation: a
    reference to them is not reported again, so one mistake yields one problem.
    """
    known = {agency.code: agency for agency in agencies}
    service_ids = {service.id for service in services} | also_services
    issues = [*_agency_issues(agencies), *_service_issues(services, known, also_agencies)]
    issues += _policy_issues(policies, known, also_agencies, service_ids)
    return issues


def _agency_issues(agencies: Sequence[Agency]) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for index, agency in enumerate(agencies):
        if agency.code in first:
            message = f"agency {agency.code} is defined twice"
            issues.append(Issue("agencies", index, ("code",), message, first[agency.code]))
        first.setdefault(agency.code, index)
        seen: set[str] = set()
        for pos, subsystem in enumerate(agency.subsystems):
            if subsystem.code in seen:
                message = f"agency {agency.code} lists subsystem {subsystem.code} twice"
                issues.append(Issue("agencies", index, ("subsystems", pos, "code"), message))
            seen.add(subsystem.code)
    return issues


def _service_issues(
    services: Sequence[ServiceSpec], known: dict[str, Agency], also_agencies: frozenset[str]
) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for index, service in enumerate(services):
        if service.id in first:
            message = f"service {service.code} version {service.version} is defined twice"
            issues.append(Issue("services", index, ("code",), message, first[service.id]))
        first.setdefault(service.id, index)
        ref = _ref_problem(service.provider, service.provider_subsystem, known, also_agencies)
        if ref is not None:
            issues.append(Issue("services", index, ("provider",), f"provider {ref}"))
        if service.default_deadline_seconds > service.max_deadline_seconds:
            message = (
                f"default_deadline_seconds ({service.default_deadline_seconds:g}) exceeds "
                f"max_deadline_seconds ({service.max_deadline_seconds:g})"
            )
            issues.append(Issue("services", index, ("default_deadline_seconds",), message))
    return issues


def _policy_issues(
    policies: Sequence[Policy],
    known: dict[str, Agency],
    also_agencies: frozenset[str],
    service_ids: set[str] | frozenset[str],
) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[tuple[str, str | None, str], int] = {}
    for index, policy in enumerate(policies):
        key = (policy.requester, policy.requester_subsystem, policy.service)
        if key in first:
            message = (
                f"a policy for {policy.requester_ref} on {policy.service} already exists; "
                "list all purposes in one policy"
            )
            issues.append(Issue("policies", index, ("requester",), message, first[key]))
        first.setdefault(key, index)
        ref = _ref_problem(policy.requester, policy.requester_subsystem, known, also_agencies)
        if ref is not None:
            issues.append(Issue("policies", index, ("requester",), f"requester {ref}"))
        if policy.service not in service_ids:
            message = f"policy for unknown service {policy.service}"
            issues.append(Issue("policies", index, ("service",), message))
        issues += _purpose_issues(policy, index)
    return issues


def _purpose_issues(policy: Policy, index: int) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for pos, purpose in enumerate(policy.purposes):
        if purpose.code in seen:
            message = f"purpose {purpose.code} is listed twice"
            issues.append(Issue("policies", index, ("purposes", pos, "code"), message))
        seen.add(purpose.code)
    return issues


def _ref_problem(
    agency: str, subsystem: str | None, known: dict[str, Agency], also: frozenset[str]
) -> str | None:
    """Why ``agency[/subsystem]`` does not resolve, or None if it does."""
    if agency in also:
        return None
    found = known.get(agency)
    if found is None:
        return f"names unknown agency {agency}"
    if subsystem is not None and not found.has_subsystem(subsystem):
        return f"names unknown subsystem {agency}/{subsystem}"
    return None
