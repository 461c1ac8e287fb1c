"""The schema evolution gate: do a service's schema revisions stay compatible?

Within one service version, payload schemas evolve by revisions (``request-1.avsc``,
``request-2.avsc`` ...). Writers use the newest revision and readers accept every one, so each
pair of revisions must be compatible under the service's declared mode, in Confluent's
vocabulary (*new* is the later revision of a pair, *old* the earlier):

    BACKWARD    reader new, writer old      (consumers upgrade first)
    FORWARD     reader old, writer new      (producers upgrade first)
    FULL        both
    *_TRANSITIVE  every earlier revision, not only the previous one
    NONE        not checked

The check itself is Apache Avro's reader/writer compatibility checker
(``avro.compatibility.ReaderWriterCompatibilityChecker``), the port of Java's
``SchemaCompatibility``; fastavro has none. Request and response revisions are checked
separately.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Literal

from avro import compatibility, errors, schema

from exchange._catalog_model import Catalog, CompatibilityMode, SchemaRevision, Service

__all__ = ["PairCheck", "check_catalog_schemas", "check_pair", "check_service_schemas"]

Direction = Literal["backward", "forward"]
Role = Literal["request", "response"]

_DIRECTIONS: dict[CompatibilityMode, tuple[Direction, ...]] = {
    CompatibilityMode.BACKWARD: ("backward",),
    CompatibilityMode.BACKWARD_TRANSITIVE: ("backward",),
    CompatibilityMode.FORWARD: ("forward",),
    CompatibilityMode.FORWARD_TRANSITIVE: ("forward",),
    CompatibilityMode.FULL: ("backward", "forward"),
    CompatibilityMode.FULL_TRANSITIVE: ("backward", "forward"),
    CompatibilityMode.NONE: (),
}


@dataclass(frozen=True, slots=True)
class PairCheck:
    """One reader/writer check between two revisions of one role of one service."""

    service_id: str
    mode: CompatibilityMode
    role: Role
    direction: Direction
    reader_revision: int
    writer_revision: int
    #: Empty when compatible; otherwise the checker's reasons, each with its location.
    reasons: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        """Whether the reader revision reads everything the writer revision writes."""
        return not self.reasons

    def __str__(self) -> str:
        verdict = "ok" if self.compatible else "INCOMPATIBLE: " + "; ".join(self.reasons)
        return (
            f"{self.service_id} {self.role} ({self.mode}, {self.direction}): "
            f"reader {self.role}-{self.reader_revision} / writer "
            f"{self.role}-{self.writer_revision}: {verdict}"
        )


def check_pair(reader_schema: str, writer_schema: str) -> tuple[str, ...]:
    """Why data written with ``writer_schema`` cannot be read with ``reader_schema``.

    Both are Avro schema JSON texts; the answer is empty when they are compatible.
    """
    try:
        reader, writer = schema.parse(reader_schema), schema.parse(writer_schema)
    except (errors.AvroException, json.JSONDecodeError) as exc:
        return (f"schema does not parse: {exc}",)
    # A fresh checker per pair: it memoizes by object identity.
    checker = compatibility.ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro leaves __init__ unannotated
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is compatibility.SchemaCompatibilityType.compatible:
        return ()
    kinds = ", ".join(sorted({kind.value for kind in result.incompatibilities}))
    details = "; ".join(sorted(result.messages))
    # The checker adds the root "/" to every merged result; keep it only when it is alone.
    locations = ", ".join(sorted(result.locations - {"/"}) or ["/"])
    return (f"{kinds}: {details} (at {locations})",)


def check_service_schemas(service: Service) -> list[PairCheck]:
    """Every check the service's mode calls for, over request and response revisions."""
    checks: list[PairCheck] = []
    roles: tuple[tuple[Role, tuple[SchemaRevision, ...]], ...] = (
        ("request", service.request_schemas),
        ("response", service.response_schemas),
    )
    for role, revisions in roles:
        texts = {rev.revision: rev.path.read_text(encoding="utf-8") for rev in revisions}
        for direction in _DIRECTIONS[service.compatibility]:
            for old, new in _pairs(revisions, service.compatibility):
                reader, writer = (new, old) if direction == "backward" else (old, new)
                reasons = check_pair(texts[reader.revision], texts[writer.revision])
                checks.append(
                    PairCheck(
                        service_id=service.id,
                        mode=service.compatibility,
                        role=role,
                        direction=direction,
                        reader_revision=reader.revision,
                        writer_revision=writer.revision,
                        reasons=reasons,
                    )
                )
    return checks


def check_catalog_schemas(catalog: Catalog) -> list[PairCheck]:
    """Run the gate over every service of the catalog."""
    return [check for service in catalog.services for check in check_service_schemas(service)]


def _pairs(
    revisions: tuple[SchemaRevision, ...], mode: CompatibilityMode
) -> Iterator[tuple[SchemaRevision, SchemaRevision]]:
    """(older, newer) pairs: consecutive ones, or all of them for *_TRANSITIVE modes."""
    if mode.endswith("_TRANSITIVE"):
        return combinations(revisions, 2)
    return pairwise(revisions)
