"""The catalog's models and lookups, on the demo catalog and on catalogs built in code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from exchange._catalog import (
    Agency,
    AnswerMode,
    Catalog,
    Classification,
    CompatibilityMode,
    Policy,
    Purpose,
    Service,
    Subsystem,
    format_service_id,
    load_catalog,
    split_ref,
    split_service_id,
)
from exchange._errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "catalog" / "demo"
SCHEMAS = ROOT / "schemas"


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(DEMO, SCHEMAS)


def _service(code: str = "nocr.person.verify", provider: str = "NOCR/identity") -> Service:
    return Service.model_validate(
        {
            "code": code,
            "version": 1,
            "provider": provider,
            "title": "A service",
            "default_deadline_seconds": 5,
            "max_deadline_seconds": 30,
            "classification": "CONFIDENTIAL",
        }
    )


def _agencies() -> tuple[Agency, ...]:
    return (
        Agency(code="NOCR", name="Civil registry", subsystems=(Subsystem(code="identity"),)),
        Agency(
            code="TAX",
            name="Tax administration",
            subsystems=(Subsystem(code="registration"), Subsystem(code="audit")),
        ),
    )


def _policy(requester: str, *purposes: str) -> Policy:
    return Policy.model_validate(
        {
            "requester": requester,
            "service": "nocr.person.verify.v1",
            "purposes": [{"code": code, "legal_basis": f"Act for {code}"} for code in purposes],
        }
    )


def test_demo_catalog_loads_with_the_brief_services(demo: Catalog) -> None:
    """The demo catalog is valid: six services of at least four agencies, each with schemas."""
    assert len(demo.services) >= 6
    assert len({service.provider for service in demo.services}) >= 4
    for service in demo.services:
        assert service.request_schemas, service.id
        assert service.response_schemas, service.id


def test_demo_has_a_service_with_a_second_revision(demo: Catalog) -> None:
    """At least one service evolved, so the evolution gate has a real pair to check."""
    revised = [s for s in demo.services if len(s.request_schemas) + len(s.response_schemas) > 2]
    assert revised


def test_service_lookup_by_id_and_by_code_and_version(demo: Catalog) -> None:
    """A service is found by its full id and by (code, version); unknown ones give None."""
    by_id = demo.service("nocr.person.verify.v1")
    assert by_id is not None
    assert demo.service("nocr.person.verify", 1) is by_id
    assert by_id.id == "nocr.person.verify.v1"
    assert by_id.provider_ref == "NOCR/identity"
    assert demo.service("nocr.person.verify.v7") is None
    assert demo.service("nocr.person.verify", 7) is None


def test_latest_revision_is_the_writer_schema(demo: Catalog) -> None:
    """Revisions are ordered oldest first; latest_* is the newest, with its fingerprint."""
    service = demo.service("tax.clearance.status.v1")
    assert service is not None
    assert [rev.revision for rev in service.response_schemas] == [1, 2, 3]
    latest = service.latest_response
    assert latest is not None
    assert latest.revision == 3
    assert latest.full_name == "ir.gov.tax.clearance.status.v1.ClearanceResponse"
    assert len(latest.fingerprint) == 8
    assert latest.fingerprint in service.response_fingerprints
    assert len(service.response_fingerprints) == 3


def test_agency_lookup_and_services_of(demo: Catalog) -> None:
    """Agencies are found by code; services_of lists what an agency (or subsystem) provides."""
    tax = demo.agency("TAX")
    assert tax is not None
    assert tax.has_subsystem("registration")
    assert not tax.has_subsystem("nowhere")
    assert demo.agency("NOPE") is None
    assert [s.id for s in demo.services_of("TAX")] == ["tax.clearance.status.v1"]
    assert demo.services_of("TAX", "registration") == ()
    assert demo.services_of("MCLS") == ()


def test_enums_and_defaults_are_read(demo: Catalog) -> None:
    """Classification, compatibility mode and answer mode come from the YAML or defaults."""
    tax = demo.service("tax.clearance.status.v1")
    post = demo.service("post.address.lookup.v1")
    assert tax is not None
    assert post is not None
    assert tax.answer_mode is AnswerMode.MANUAL
    assert tax.compatibility is CompatibilityMode.BACKWARD_TRANSITIVE
    assert post.compatibility is CompatibilityMode.BACKWARD
    assert post.classification is Classification.INTERNAL


def test_agency_wide_grant_reaches_every_subsystem() -> None:
    """A policy for the agency alone allows each of its subsystems, and the agency itself."""
    catalog = Catalog(
        agencies=_agencies(), services=(_service(),), policies=(_policy("TAX", "tax-audit"),)
    )
    sid = "nocr.person.verify.v1"
    assert catalog.allowed_purposes("TAX", None, sid) == {"tax-audit"}
    assert catalog.allowed_purposes("TAX", "registration", sid) == {"tax-audit"}
    assert catalog.allowed_purposes("TAX", "audit", sid) == {"tax-audit"}


def test_subsystem_grant_stays_with_that_subsystem() -> None:
    """A policy for one subsystem allows neither its siblings nor the agency as a whole."""
    policy = _policy("TAX/registration", "tax-registration")
    catalog = Catalog(agencies=_agencies(), services=(_service(),), policies=(policy,))
    sid = "nocr.person.verify.v1"
    assert catalog.allowed_purposes("TAX", "registration", sid) == {"tax-registration"}
    assert catalog.allowed_purposes("TAX", "audit", sid) == frozenset()
    assert catalog.allowed_purposes("TAX", None, sid) == frozenset()
    assert catalog.allowed_purposes("NOCR", None, sid) == frozenset()
    assert catalog.allowed_purposes("TAX", "registration", "other.service.v1") == frozenset()


def test_agency_and_subsystem_grants_add_up() -> None:
    """Purposes granted to the agency and to the subsystem are both allowed to the subsystem."""
    policies = (_policy("TAX", "tax-audit"), _policy("TAX/registration", "tax-registration"))
    catalog = Catalog(agencies=_agencies(), services=(_service(),), policies=policies)
    allowed = catalog.allowed_purposes("TAX", "registration", "nocr.person.verify.v1")
    assert allowed == {"tax-audit", "tax-registration"}


def test_purpose_lookup_gives_the_legal_basis(demo: Catalog) -> None:
    """purpose() returns the granted purpose with its legal basis, None when not granted."""
    found = demo.purpose("POLICE", "traffic", "nocr.person.verify.v1", "driving-licence-issue")
    assert isinstance(found, Purpose)
    assert found.legal_basis
    assert demo.purpose("POLICE", "traffic", "nocr.person.verify.v1", "tax-audit") is None
    assert len(demo.policies_for("post.address.lookup.v1")) == 4


def test_catalog_built_in_code_checks_cross_references() -> None:
    """Building a Catalog with a dangling reference raises CatalogError naming the entry."""
    with pytest.raises(CatalogError) as caught:
        Catalog(agencies=_agencies(), services=(_service(provider="POST"),))
    assert caught.value.problems == [
        "services[0].provider: service nocr.person.verify.v1: provider names unknown agency POST"
    ]


def test_catalog_round_trips_through_json(demo: Catalog) -> None:
    """The whole catalog, schemas and fingerprints included, survives a JSON round trip."""
    again = Catalog.model_validate_json(demo.model_dump_json())
    assert again == demo
    assert again.allowed_purposes("TAX", "registration", "nocr.person.verify.v1")


def test_models_are_frozen(demo: Catalog) -> None:
    """Catalog values cannot be changed after loading."""
    service = demo.services[0]
    with pytest.raises(ValidationError):
        service.title = "changed"  # type: ignore[misc]  # the assignment is the point


@pytest.mark.parametrize(
    ("service_id", "expected"),
    [
        ("nocr.person.verify.v1", ("nocr.person.verify", 1)),
        ("bankmelli.account.ownership.v12", ("bankmelli.account.ownership", 12)),
        ("nocr.v1", None),
        ("nocr.person.verify", None),
        ("nocr.person.verify.v0", None),
        ("NOCR.person.verify.v1", None),
        ("nocr.v2.verify.v1", None),
        ("verify.v1x", None),
    ],
)
def test_split_service_id(service_id: str, expected: tuple[str, int] | None) -> None:
    """Full ids split into code and version; malformed ones give None."""
    assert split_service_id(service_id) == expected


def test_ids_and_refs_format_both_ways() -> None:
    """format_service_id and split_ref are the inverses clients rely on."""
    assert format_service_id("post.address.lookup", 1) == "post.address.lookup.v1"
    assert split_ref("TAX/registration") == ("TAX", "registration")
    assert split_ref("BANK-MELLI") == ("BANK-MELLI", None)
