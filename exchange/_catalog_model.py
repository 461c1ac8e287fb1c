"""The catalog's data: agencies, services, policies, and the lookups the hot path needs.

Pure values, no file access (loading from YAML lives in ``_catalog.py``). Every model is a
frozen pydantic model; :class:`Catalog` checks its cross-references when it is built and keeps
dictionaries for constant-time lookups. Whether an inquiry is *allowed* is decided elsewhere
(routing); this module only answers what the catalog says.

Identifiers and their formats are in ``_catalog_ids.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exchange._catalog_ids import (
    AgencyCode,
    PurposeCode,
    ServiceCode,
    ServiceId,
    SubsystemCode,
    Text,
    format_ref,
    format_service_id,
    split_ref_field,
)
from exchange._catalog_rules import Issue, find_issues
from exchange._errors import CatalogError
from exchange._signing import SignaturePolicy, key_id_of, public_key_from_text

__all__ = [
    "Agency",
    "AgencyKey",
    "AnswerMode",
    "Catalog",
    "Classification",
    "CompatibilityMode",
    "Policy",
    "Purpose",
    "SchemaRevision",
    "Service",
    "ServiceSpec",
    "Subsystem",
]


class Classification(StrEnum):
    """How sensitive the data a service returns is."""

    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    CONFIDENTIAL = "CONFIDENTIAL"
    RESTRICTED = "RESTRICTED"


class CompatibilityMode(StrEnum):
    """How revisions of a service's schemas must relate (Confluent's vocabulary)."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"


class AnswerMode(StrEnum):
    """Whether the provider commits to answer by a system or by a person."""

    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex"
    )


class Subsystem(_Frozen):
    """A part of an agency that asks or answers on its own (X-Road's subsystem)."""

    code: SubsystemCode
    description: str = ""


class AgencyKey(_Frozen):
    """One Ed25519 public key of an agency; several at once while a key is being rotated."""

    #: 16 hex digits of the key's SHA-256 (:func:`exchange._signing.key_id_of`); checked.
    id: str = Field(pattern=r"^[0-9a-f]{16}$")
    #: The 32-byte raw public key in standard base64.
    public_key: str

    @model_validator(mode="after")
    def _id_matches(self) -> AgencyKey:
        raw = public_key_from_text(self.public_key)  # ValueError: reported by pydantic
        if key_id_of(raw) != self.id:
            raise ValueError(f"the key id of this public key is {key_id_of(raw)}, not {self.id}")
        return self

    @cached_property
    def verifier(self) -> Ed25519PublicKey:
        """The key, ready to verify signatures."""
        return Ed25519PublicKey.from_public_bytes(public_key_from_text(self.public_key))


class Agency(_Frozen):
    """A member of the bus."""

    code: AgencyCode
    name: Text
    description: str = ""
    subsystems: tuple[Subsystem, ...] = ()
    #: Public keys that verify this agency's signatures (``docs/catalog.md``, "Signatures").
    keys: tuple[AgencyKey, ...] = ()
    #: ``required``: every request and response this agency writes must be signed.
    signatures: SignaturePolicy = SignaturePolicy.OPTIONAL

    def has_subsystem(self, code: str) -> bool:
        """Whether the agency declares a subsystem with this code."""
        return any(sub.code == code for sub in self.subsystems)

    @cached_property
    def verifiers(self) -> dict[str, Ed25519PublicKey]:
        """Key id -> public key, for verifying this agency's signatures."""
        return {key.id: key.verifier for key in self.keys}


class SchemaRevision(_Frozen):
    """One revision of a service's request or response schema, as found on disk."""

    role: Literal["request", "response"]
    revision: int = Field(ge=1)
    path: Path
    #: The record's full Avro name; the same in every revision of one role.
    full_name: str
    #: CRC-64-AVRO of the parsing canonical form: the 8 bytes that follow ``C3 01`` in a
    #: single-object encoded record (little-endian, as the Avro specification puts them).
    fingerprint: bytes = Field(min_length=8, max_length=8)


class ServiceSpec(_Frozen):
    """A service as declared in ``services.yaml`` (schemas are found by the loader)."""

    code: ServiceCode
    version: int = Field(ge=1)
    provider: AgencyCode
    provider_subsystem: SubsystemCode | None = None
    title: Text
    description: str = ""
    default_deadline_seconds: float = Field(gt=0)
    max_deadline_seconds: float = Field(gt=0)
    classification: Classification
    compatibility: CompatibilityMode = CompatibilityMode.BACKWARD
    answer_mode: AnswerMode = AnswerMode.AUTOMATIC
    #: ``required``: requests to this service and its responses must be signed.
    signatures: SignaturePolicy = SignaturePolicy.OPTIONAL

    @model_validator(mode="before")
    @classmethod
    def _provider_ref(cls, data: Any) -> Any:
        return split_ref_field(data, "provider")

    @cached_property
    def id(self) -> str:
        """The full id clients use: ``nocr.person.verify.v1``."""
        return format_service_id(self.code, self.version)

    @property
    def provider_ref(self) -> str:
        """The provider as ``AGENCY`` or ``AGENCY/subsystem``."""
        return format_ref(self.provider, self.provider_subsystem)


class Service(ServiceSpec):
    """A service with its schema revisions, oldest first (writers use the newest)."""

    request_schemas: tuple[SchemaRevision, ...] = ()
    response_schemas: tuple[SchemaRevision, ...] = ()

    @property
    def latest_request(self) -> SchemaRevision | None:
        """The request revision writers use; None only for a service built without schemas."""
        return self.request_schemas[-1] if self.request_schemas else None

    @property
    def latest_response(self) -> SchemaRevision | None:
        """The response revision writers use; None only for a service built without schemas."""
        return self.response_schemas[-1] if self.response_schemas else None

    @cached_property
    def request_fingerprints(self) -> frozenset[bytes]:
        """Fingerprints of every accepted request revision."""
        return frozenset(rev.fingerprint for rev in self.request_schemas)

    @cached_property
    def response_fingerprints(self) -> frozenset[bytes]:
        """Fingerprints of every accepted response revision."""
        return frozenset(rev.fingerprint for rev in self.response_schemas)


class Purpose(_Frozen):
    """A purpose a requester may ask for, and the legal basis that allows it."""

    code: PurposeCode
    legal_basis: Text


class Policy(_Frozen):
    """Grants one requester (agency, or one subsystem of it) access to one service."""

    requester: AgencyCode
    requester_subsystem: SubsystemCode | None = None
    service: ServiceId
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _requester_ref(cls, data: Any) -> Any:
        return split_ref_field(data, "requester")

    @property
    def requester_ref(self) -> str:
        """The requester as ``AGENCY`` or ``AGENCY/subsystem``."""
        return format_ref(self.requester, self.requester_subsystem)


_GrantKey = tuple[str, str | None, str]
_NO_PURPOSES: frozenset[str] = frozenset()


class Catalog(_Frozen):
    """The validated catalog, with constant-time lookups for the hot path.

    Building one checks every cross-reference and raises :class:`CatalogError` listing all
    problems; :func:`exchange._catalog.load_catalog` does the same with file positions.
    """

    agencies: tuple[Agency, ...] = ()
    services: tuple[Service, ...] = ()
    policies: tuple[Policy, ...] = ()

    def model_post_init(self, context: Any, /) -> None:
        """Refuse an inconsistent catalog, then index it."""
        issues = find_issues(self.agencies, self.services, self.policies)
        if issues:
            raise CatalogError(
                f"the catalog has {len(issues)} problem(s)",
                problems=[_describe(issue) for issue in issues],
            )

    @cached_property
    def _agency_index(self) -> dict[str, Agency]:
        return {agency.code: agency for agency in self.agencies}

    @cached_property
    def _service_index(self) -> dict[str, Service]:
        return {service.id: service for service in self.services}

    @cached_property
    def _provider_index(self) -> dict[str, tuple[Service, ...]]:
        index: dict[str, list[Service]] = {}
        for service in self.services:
            index.setdefault(service.provider, []).append(service)
        return {code: tuple(services) for code, services in index.items()}

    @cached_property
    def _grant_index(self) -> dict[_GrantKey, dict[str, Purpose]]:
        return _grants(self.policies)

    @cached_property
    def _allowed_index(self) -> dict[_GrantKey, frozenset[str]]:
        return {key: frozenset(purposes) for key, purposes in self._grant_index.items()}

    def agency(self, code: str) -> Agency | None:
        """The agency with this code, or None."""
        return self._agency_index.get(code)

    def service(self, service: str, version: int | None = None) -> Service | None:
        """Look a service up by full id (``nocr.person.verify.v1``) or by code and version."""
        key = service if version is None else format_service_id(service, version)
        return self._service_index.get(key)

    def services_of(self, provider: str, subsystem: str | None = None) -> tuple[Service, ...]:
        """Services the agency provides; only those of one subsystem if ``subsystem`` is set."""
        services = self._provider_index.get(provider, ())
        if subsystem is None:
            return services
        return tuple(s for s in services if s.provider_subsystem == subsystem)

    def allowed_purposes(
        self, requester_agency: str, requester_subsystem: str | None, service_id: str
    ) -> frozenset[str]:
        """Purposes the requester may ask the service for; empty means not allowed.

        Grants to the agency alone apply to each of its subsystems; grants to a subsystem
        apply to that subsystem only.
        """
        index = self._allowed_index
        if requester_subsystem is not None:
            found = index.get((requester_agency, requester_subsystem, service_id))
            if found is not None:
                return found
        return index.get((requester_agency, None, service_id), _NO_PURPOSES)

    def purpose(
        self,
        requester_agency: str,
        requester_subsystem: str | None,
        service_id: str,
        purpose: str,
    ) -> Purpose | None:
        """The granted purpose with its legal basis, or None if not granted."""
        index = self._grant_index
        if requester_subsystem is not None:
            found = index.get((requester_agency, requester_subsystem, service_id))
            if found is not None:
                return found.get(purpose)
        return index.get((requester_agency, None, service_id), {}).get(purpose)

    def policies_for(self, service_id: str) -> tuple[Policy, ...]:
        """Every policy that grants access to the service."""
        return tuple(p for p in self.policies if p.service == service_id)


def _grants(policies: Iterable[Policy]) -> dict[_GrantKey, dict[str, Purpose]]:
    """Index purposes by (agency, subsystem or None, service id); agency grants flow down."""
    index: dict[_GrantKey, dict[str, Purpose]] = {}
    for policy in policies:
        key = (policy.requester, policy.requester_subsystem, policy.service)
        for purpose in policy.purposes:
            index.setdefault(key, {})[purpose.code] = purpose
    for (agency, subsystem, service), purposes in index.items():
        if subsystem is not None:
            for code, purpose in index.get((agency, None, service), {}).items():
                purposes.setdefault(code, purpose)
    return index


def _describe(issue: Issue) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in issue.path)
    return f"{issue.section}[{issue.index}]{path}: {issue.label}: {issue.message}"
