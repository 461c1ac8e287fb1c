"""Finding and checking a service's payload schemas on disk.

Layout (see ``docs/catalog.md``)::

    <schemas>/services/<code>.v<version>/request-<rev>.avsc     rev = 1, 2, ... no gaps
    <schemas>/services/<code>.v<version>/response-<rev>.avsc

Each file must be an Avro record schema whose namespace ends with ``<code>.v<version>``, so a
record's full name tells which service version it belongs to; every revision of one role keeps
the same full name, and request and response names differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from fastavro.schema import SchemaParseException, parse_schema

from exchange._catalog_model import SchemaRevision, ServiceSpec
from exchange._catalog_yaml import Problem
from exchange._fingerprint import schema_fingerprint

__all__ = ["ServiceSchemas", "find_service_schemas", "service_schema_dir"]

Role = Literal["request", "response"]
_ROLES: tuple[Role, ...] = ("request", "response")
_FILE_NAME = re.compile(r"(?P<role>request|response)-(?P<rev>[1-9][0-9]*)\.avsc")


@dataclass
class ServiceSchemas:
    """What was found for one service: revisions per role, and problems.

    ``entry_problems`` belong to the service's catalog entry (a missing folder); ``problems``
    carry their own position inside a schema file.
    """

    request: tuple[SchemaRevision, ...] = ()
    response: tuple[SchemaRevision, ...] = ()
    entry_problems: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def service_schema_dir(schemas_path: Path, service: ServiceSpec) -> Path:
    """The folder holding one service version's schemas."""
    return schemas_path / "services" / service.id


def find_service_schemas(schemas_path: Path, service: ServiceSpec) -> ServiceSchemas:
    """Find, parse and check every schema revision of ``service``."""
    found = ServiceSchemas()
    folder = service_schema_dir(schemas_path, service)
    if not folder.is_dir():
        found.entry_problems.append(f"schema folder {folder} is missing")
        return found
    files = _revision_files(folder, found)
    revisions = {role: _load_role(role, files[role], service, found) for role in _ROLES}
    found.request, found.response = revisions["request"], revisions["response"]
    _check_names_differ(found)
    return found


def _revision_files(folder: Path, found: ServiceSchemas) -> dict[Role, dict[int, Path]]:
    files: dict[Role, dict[int, Path]] = {"request": {}, "response": {}}
    for path in sorted(folder.glob("*.avsc")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            message = "schema file name must be request-<revision>.avsc or response-<revision>.avsc"
            found.problems.append(Problem(path, 1, 1, message))
            continue
        role: Role = "request" if match["role"] == "request" else "response"
        files[role][int(match["rev"])] = path
    return files


def _load_role(
    role: Role, files: dict[int, Path], service: ServiceSpec, found: ServiceSchemas
) -> tuple[SchemaRevision, ...]:
    if not files:
        found.entry_problems.append(f"no {role} schema: add {role}-1.avsc to its schema folder")
        return ()
    if sorted(files) != list(range(1, len(files) + 1)):
        numbers = ", ".join(str(n) for n in sorted(files))
        found.entry_problems.append(
            f"{role} revisions of {service.id} must run 1, 2, ... without gaps; found {numbers}"
        )
    revisions = [_load_revision(role, rev, files[rev], service, found) for rev in sorted(files)]
    loaded = tuple(rev for rev in revisions if rev is not None)
    _check_same_name(loaded, found)
    return loaded


def _load_revision(
    role: Role, revision: int, path: Path, service: ServiceSpec, found: ServiceSchemas
) -> SchemaRevision | None:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        found.problems.append(Problem(path, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        found.problems.append(Problem(path, 1, 1, f"cannot read schema: {exc}"))
        return None
    try:
        parsed = parse_schema(document, named_schemas={})
    except (SchemaParseException, ValueError, TypeError, KeyError, AttributeError) as exc:
        # fastavro reports a bad schema through several exception types.
        found.problems.append(Problem(path, 1, 1, f"not a valid Avro schema: {exc}"))
        return None
    problem = _shape_problem(parsed, service)
    if problem is not None or not isinstance(parsed, dict):
        reason = problem or "the top-level schema must be a record"
        found.problems.append(Problem(path, _line_of(text, '"namespace"'), 1, reason))
        return None
    return SchemaRevision(
        role=role,
        revision=revision,
        path=path,
        full_name=str(parsed["name"]),
        fingerprint=schema_fingerprint(parsed),
    )


def _shape_problem(parsed: Any, service: ServiceSpec) -> str | None:
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return "the top-level schema must be a record"
    namespace, _, name = str(parsed["name"]).rpartition(".")
    suffix = service.id
    if namespace != suffix and not namespace.endswith(f".{suffix}"):
        return (
            f"record {name} has namespace {namespace or '(none)'!r}; it must end with "
            f"{suffix!r} (e.g. ir.gov.{suffix})"
        )
    return None


def _check_same_name(revisions: tuple[SchemaRevision, ...], found: ServiceSchemas) -> None:
    for previous, current in pairwise(revisions):
        if current.full_name != previous.full_name:
            message = (
                f"record is named {current.full_name} but revision {previous.revision} "
                f"names it {previous.full_name}; every revision keeps one name"
            )
            found.problems.append(Problem(current.path, 1, 1, message))


def _check_names_differ(found: ServiceSchemas) -> None:
    if found.request and found.response:
        request, response = found.request[-1], found.response[-1]
        if request.full_name == response.full_name:
            message = (
                f"request and response records must have different names ({request.full_name})"
            )
            found.problems.append(Problem(response.path, 1, 1, message))


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first ``needle`` in ``text``, or 1."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1
