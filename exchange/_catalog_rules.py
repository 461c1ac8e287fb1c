"""Cross-reference rules of the catalog, as one pure function over its entries.

Each rule yields an :class:`Issue` that names the entry (section and position) and the field
at fault, so the YAML loader can point at the very line and :class:`Catalog` can name the
entry when it is built in code. Shape rules (formats, required keys) are the models' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
    #: How problems name the entry: "agency TAX", "service nocr.person.verify.v1" ...
    label: str
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
    check_agency_refs: bool = True,
    check_service_refs: bool = True,
) -> list[Issue]:
    """Every cross-reference problem, in file order.

    ``also_agencies`` / ``also_services`` name entries that exist but failed validation: a
    reference to them is not reported again, so one mistake yields one problem. For the same
    reason ``check_*_refs=False`` skips references into a file that could not be read at all.
    """
    refs = _Refs(also_agencies, check_agency_refs, check_service_refs)
    for agency in agencies:  # a duplicate is reported; references resolve to the first
        refs.agencies.setdefault(agency.code, agency)
    refs.services = {service.id for service in services} | also_services
    return [
        *_agency_issues(agencies),
        *_service_issues(services, refs),
        *_policy_issues(policies, refs),
    ]


@dataclass
class _Refs:
    """What references may point at."""

    also_agencies: frozenset[str]
    check_agencies: bool
    check_services: bool
    agencies: dict[str, Agency] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)

    def agency_problem(self, agency: str, subsystem: str | None) -> str | None:
        """Why ``agency[/subsystem]`` does not resolve, or None if it does."""
        if not self.check_agencies or agency in self.also_agencies:
            return None
        found = self.agencies.get(agency)
        if found is None:
            return f"names unknown agency {agency}"
        if subsystem is not None and not found.has_subsystem(subsystem):
            return f"names unknown subsystem {agency}/{subsystem}"
        return None

    def service_known(self, service_id: str) -> bool:
        """Whether a policy may name this service id."""
        return not self.check_services or service_id in self.services


def _agency_issues(agencies: Sequence[Agency]) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for index, agency in enumerate(agencies):
        code, label = agency.code, f"agency {agency.code}"
        if code in first:
            issues.append(Issue("agencies", index, label, ("code",), "defined twice", first[code]))
        first.setdefault(code, index)
        seen: set[str] = set()
        for pos, subsystem in enumerate(agency.subsystems):
            if subsystem.code in seen:
                message = f"subsystem {subsystem.code} is listed twice"
                path = ("subsystems", pos, "code")
                issues.append(Issue("agencies", index, label, path, message))
            seen.add(subsystem.code)
        if agency.signatures == "required" and not agency.keys:
            message = "signatures are required but the agency lists no keys"
            issues.append(Issue("agencies", index, label, ("signatures",), message))
    return issues


def _service_issues(services: Sequence[ServiceSpec], refs: _Refs) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for index, service in enumerate(services):
        label = f"service {service.id}"
        if service.id in first:
            dup = first[service.id]
            issues.append(Issue("services", index, label, ("code",), "defined twice", dup))
        first.setdefault(service.id, index)
        ref = refs.agency_problem(service.provider, service.provider_subsystem)
        if ref is not None:
            issues.append(Issue("services", index, label, ("provider",), f"provider {ref}"))
        if service.default_deadline_seconds > service.max_deadline_seconds:
            message = (
                f"default_deadline_seconds ({service.default_deadline_seconds:g}) exceeds "
                f"max_deadline_seconds ({service.max_deadline_seconds:g})"
            )
            path = ("default_deadline_seconds",)
            issues.append(Issue("services", index, label, path, message))
        provider = refs.agencies.get(service.provider)
        if service.signatures == "required" and provider is not None and not provider.keys:
            message = f"signatures are required but provider {service.provider} lists no keys"
            issues.append(Issue("services", index, label, ("signatures",), message))
    return issues


def _policy_issues(policies: Sequence[Policy], refs: _Refs) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[tuple[str, str | None, str], int] = {}
    for index, policy in enumerate(policies):
        key = (policy.requester, policy.requester_subsystem, policy.service)
        label = f"policy {policy.requester_ref} -> {policy.service}"
        if key in first:
            message = "defined twice; list all purposes of a requester and service in one policy"
            issues.append(Issue("policies", index, label, ("requester",), message, first[key]))
        first.setdefault(key, index)
        ref = refs.agency_problem(policy.requester, policy.requester_subsystem)
        if ref is not None:
            issues.append(Issue("policies", index, label, ("requester",), f"requester {ref}"))
        if not refs.service_known(policy.service):
            message = f"names unknown service {policy.service}"
            issues.append(Issue("policies", index, label, ("service",), message))
        issues += _purpose_issues(policy, index, label)
    return issues


def _purpose_issues(policy: Policy, index: int, label: str) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for pos, purpose in enumerate(policy.purposes):
        if purpose.code in seen:
            message = f"purpose {purpose.code} is listed twice"
            path = ("purposes", pos, "code")
            issues.append(Issue("policies", index, label, path, message))
        seen.add(purpose.code)
    return issues
