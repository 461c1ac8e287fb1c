"""Loading the catalog from its folder of YAML files, reporting every problem with its place.

A catalog folder holds ``agencies.yaml``, ``services.yaml`` and ``policies.yaml`` (see
``docs/catalog.md``); each service's payload schemas live under ``<schemas>/services/``.
:func:`load_catalog` reads all three, checks each entry's shape (pydantic), the
cross-references between entries, and the schema files, and either returns a
:class:`Catalog` or raises :class:`CatalogError` whose ``problems`` hold *every* problem found,
each as ``file:line:column: message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from exchange._catalog_ids import format_service_id, split_ref, split_service_id
from exchange._catalog_model import (
    Agency,
    AnswerMode,
    Catalog,
    Classification,
    CompatibilityMode,
    Policy,
    Purpose,
    SchemaRevision,
    Service,
    ServiceSpec,
    Subsystem,
)
from exchange._catalog_rules import Issue, Section, find_issues
from exchange._catalog_yaml import Problem, node_at, problem_at, read_entries, to_python
from exchange._errors import CatalogError
from exchange._service_schemas import find_service_schemas

__all__ = [
    "Agency",
    "AnswerMode",
    "Catalog",
    "Classification",
    "CompatibilityMode",
    "Policy",
    "Problem",
    "Purpose",
    "SchemaRevision",
    "Service",
    "Subsystem",
    "format_service_id",
    "load_catalog",
    "split_ref",
    "split_service_id",
]

CATALOG_FILES: dict[Section, str] = {
    "agencies": "agencies.yaml",
    "services": "services.yaml",
    "policies": "policies.yaml",
}
# Model fields that the YAML writes inside another key ("provider: NOCR/identity").
_ALIASES = {"provider_subsystem": "provider", "requester_subsystem": "requester"}

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[M]):
    value: M
    node: yaml.Node


@dataclass
class _Section(Generic[M]):
    file: Path
    entries: list[_Entry[M]]
    #: Names of entries that failed validation, so references to them are not reported too.
    invalid_names: frozenset[str]
    #: False when the file's list could not be read at all: references into it are not checked.
    readable: bool


def load_catalog(path: Path, schemas_path: Path) -> Catalog:
    """Load and validate the catalog in folder ``path``; raise CatalogError listing all problems."""
    if not path.is_dir():
        raise CatalogError(
            f"catalog folder {path} does not exist", problems=[f"{path}: folder is missing"]
        )
    problems: list[Problem] = []
    agencies = _read_section(path, "agencies", Agency, problems)
    specs = _read_section(path, "services", ServiceSpec, problems)
    policies = _read_section(path, "policies", Policy, problems)
    issues = find_issues(
        [entry.value for entry in agencies.entries],
        [entry.value for entry in specs.entries],
        [entry.value for entry in policies.entries],
        also_agencies=agencies.invalid_names,
        also_services=specs.invalid_names,
        check_agency_refs=agencies.readable,
        check_service_refs=specs.readable,
    )
    sections: dict[Section, _Section[Any]] = {
        "agencies": agencies,
        "services": specs,
        "policies": policies,
    }
    problems += [_locate(issue, sections[issue.section]) for issue in issues]
    services = [_with_schemas(entry, specs.file, schemas_path, problems) for entry in specs.entries]
    if problems:
        problems.sort(key=lambda p: (str(p.file), p.line, p.column))
        raise CatalogError(
            f"catalog {path} has {len(problems)} problem(s)",
            problems=[str(problem) for problem in problems],
        )
    return Catalog(
        agencies=tuple(entry.value for entry in agencies.entries),
        services=tuple(services),
        policies=tuple(entry.value for entry in policies.entries),
    )


def _read_section(
    folder: Path, section: Section, model: type[M], problems: list[Problem]
) -> _Section[M]:
    file = folder / CATALOG_FILES[section]
    nodes, found = read_entries(file, section)
    problems += found
    if nodes is None:
        return _Section(file, [], frozenset(), readable=False)
    entries: list[_Entry[M]] = []
    invalid: set[str] = set()
    for node in nodes:
        try:
            raw = to_python(node)
        except yaml.MarkedYAMLError as exc:
            problems.append(problem_at(file, exc.problem_mark, f"malformed YAML: {exc.problem}"))
            continue
        try:
            entries.append(_Entry(model.model_validate(raw), node))
        except ValidationError as exc:
            label = _label(section, raw)
            errors = _most_specific(exc.errors())
            problems += [_field_problem(file, node, label, error) for error in errors]
            invalid.update(_names(section, raw))
    return _Section(file, entries, frozenset(invalid), readable=True)


def _most_specific(errors: list[Any]) -> list[Any]:
    """Drop errors about a value whose parts have errors of their own.

    pydantic reports a list whose only item is invalid both at the item and, as "too short",
    at the list; the item's error is the one worth reading.
    """
    locs = [tuple(error["loc"]) for error in errors]
    return [
        error
        for error, loc in zip(errors, locs, strict=True)
        if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
    ]


def _field_problem(file: Path, node: yaml.Node, label: str, error: Any) -> Problem:
    """Turn one pydantic error into a problem at the offending key."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    where = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        message = f"unknown key {where!r}"
    elif error["type"] == "missing":
        message = f"missing required key {where!r}"
    elif error["type"] == "model_type" and not loc:
        message = "each entry must be a mapping of keys to values"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        message = f"{where}: {reason}" if where else reason
    return problem_at(file, node_at(node, loc, _ALIASES).start_mark, f"{label}: {message}")


def _locate(issue: Issue, section: _Section[Any]) -> Problem:
    node = section.entries[issue.index].node
    message = f"{issue.label}: {issue.message}"
    if issue.duplicate_of is not None:
        first = section.entries[issue.duplicate_of].node.start_mark
        message += f" (first at line {first.line + 1})"
    target = node_at(node, issue.path, _ALIASES)
    return problem_at(section.file, target.start_mark, message)


def _with_schemas(
    entry: _Entry[ServiceSpec], file: Path, schemas_path: Path, problems: list[Problem]
) -> Service:
    spec = entry.value
    found = find_service_schemas(schemas_path, spec)
    for message in found.entry_problems:
        problems.append(problem_at(file, entry.node.start_mark, f"service {spec.id}: {message}"))
    problems += found.problems
    fields = {name: getattr(spec, name) for name in ServiceSpec.model_fields}
    return Service(**fields, request_schemas=found.request, response_schemas=found.response)


def _label(section: Section, raw: Any) -> str:
    """How a problem names an entry, from whatever of its keys are readable."""
    data = raw if isinstance(raw, dict) else {}
    if section == "agencies":
        return f"agency {data.get('code', '?')}"
    if section == "services":
        return f"service {data.get('code', '?')}.v{data.get('version', '?')}"
    return f"policy {data.get('requester', '?')} -> {data.get('service', '?')}"


def _names(section: Section, raw: Any) -> set[str]:
    """Names an invalid entry would define, so references to it are not reported again."""
    if not isinstance(raw, dict):
        return set()
    code, version = raw.get("code"), raw.get("version")
    if section == "agencies" and isinstance(code, str):
        return {split_ref(code)[0]}
    if section == "services" and isinstance(code, str) and isinstance(version, int):
        return {format_service_id(code, version)}
    return set()
