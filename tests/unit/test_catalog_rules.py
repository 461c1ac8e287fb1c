"""Each rule of the catalog loader, one test each, with the exact file:line:column it reports.

Every test starts from a small valid catalog written to a temporary folder, changes one thing,
and compares the full list of problems, so a rule that fires too often fails too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from exchange._catalog import load_catalog
from exchange._errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"

AGENCIES = """\
agencies:
  - code: NOCR
    name: Civil registry
    subsystems:
      - code: identity
  - code: TAX
    name: Tax administration
    subsystems:
      - code: registration
"""

SERVICES = """\
services:
  - code: nocr.person.verify
    version: 1
    provider: NOCR/identity
    title: Person identity verification
    default_deadline_seconds: 5
    max_deadline_seconds: 30
    classification: CONFIDENTIAL
"""

POLICIES = """\
policies:
  - requester: TAX/registration
    service: nocr.person.verify.v1
    purposes:
      - code: tax-registration
        legal_basis: Direct Taxation Act.
"""

POST_SERVICE = """\
  - code: post.address.lookup
    version: 1
    provider: NOCR
    title: Address by postal code
    default_deadline_seconds: 3
    max_deadline_seconds: 20
    classification: INTERNAL
"""


def _problems(
    folder: Path,
    *,
    agencies: str = AGENCIES,
    services: str = SERVICES,
    policies: str = POLICIES,
    schemas: Path = SCHEMAS,
) -> list[str]:
    """Write the catalog, load it, and return its problems with the folder prefix removed."""
    for name, text in (
        ("agencies.yaml", agencies),
        ("services.yaml", services),
        ("policies.yaml", policies),
    ):
        (folder / name).write_text(text, encoding="utf-8")
    try:
        load_catalog(folder, schemas)
    except CatalogError as exc:
        return [problem.replace(f"{folder}/", "") for problem in exc.problems]
    return []


def test_base_catalog_is_valid(tmp_path: Path) -> None:
    """The starting point of every test below has no problem."""
    assert _problems(tmp_path) == []


def test_unknown_provider_agency(tmp_path: Path) -> None:
    """A service whose provider is not an agency of the catalog is reported at `provider`."""
    services = SERVICES.replace("provider: NOCR/identity", "provider: CUSTOMS")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:4:15: service nocr.person.verify.v1: provider names unknown agency CUSTOMS"
    ]


def test_unknown_provider_subsystem(tmp_path: Path) -> None:
    """A provider subsystem the agency does not declare is reported at `provider`."""
    services = SERVICES.replace("NOCR/identity", "NOCR/births")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:4:15: service nocr.person.verify.v1: "
        "provider names unknown subsystem NOCR/births"
    ]


def test_unknown_requester_agency(tmp_path: Path) -> None:
    """A policy for a requester that is not an agency of the catalog is reported."""
    policies = POLICIES.replace("TAX/registration", "CUSTOMS")
    assert _problems(tmp_path, policies=policies) == [
        "policies.yaml:2:16: policy CUSTOMS -> nocr.person.verify.v1: "
        "requester names unknown agency CUSTOMS"
    ]


def test_unknown_requester_subsystem(tmp_path: Path) -> None:
    """A policy for a subsystem the requester agency does not declare is reported."""
    policies = POLICIES.replace("TAX/registration", "TAX/audit")
    assert _problems(tmp_path, policies=policies) == [
        "policies.yaml:2:16: policy TAX/audit -> nocr.person.verify.v1: "
        "requester names unknown subsystem TAX/audit"
    ]


def test_policy_for_unknown_service(tmp_path: Path) -> None:
    """A policy naming a service id the catalog lacks is reported at `service`."""
    policies = POLICIES.replace("nocr.person.verify.v1", "nocr.person.verify.v2")
    assert _problems(tmp_path, policies=policies) == [
        "policies.yaml:3:14: policy TAX/registration -> nocr.person.verify.v2: "
        "names unknown service nocr.person.verify.v2"
    ]


def test_malformed_service_id_in_policy(tmp_path: Path) -> None:
    """A policy's service must be a full id with its version."""
    policies = POLICIES.replace("nocr.person.verify.v1", "nocr.person.verify")
    problems = _problems(tmp_path, policies=policies)
    assert len(problems) == 1
    assert problems[0].startswith("policies.yaml:3:14: policy TAX/registration -> ")
    assert "must be a service code followed by .v and the version" in problems[0]


def test_duplicate_agency_code(tmp_path: Path) -> None:
    """The second agency with a code already used is reported, pointing to the first."""
    agencies = AGENCIES + "  - code: TAX\n    name: Tax again\n"
    assert _problems(tmp_path, agencies=agencies) == [
        "agencies.yaml:10:11: agency TAX: defined twice (first at line 6)"
    ]


def test_duplicate_subsystem(tmp_path: Path) -> None:
    """An agency listing one subsystem twice is reported at the second."""
    agencies = AGENCIES + "      - code: registration\n"
    assert _problems(tmp_path, agencies=agencies) == [
        "agencies.yaml:10:15: agency TAX: subsystem registration is listed twice"
    ]


def test_duplicate_service(tmp_path: Path) -> None:
    """Two services with the same code and version are reported at the second."""
    services = SERVICES + SERVICES.removeprefix("services:\n")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:9:11: service nocr.person.verify.v1: defined twice (first at line 2)"
    ]


def test_same_code_with_another_version_is_a_different_service(tmp_path: Path) -> None:
    """A new version of a code is its own service (it then needs its own schema folder)."""
    services = SERVICES + SERVICES.removeprefix("services:\n").replace("version: 1", "version: 2")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:9:5: service nocr.person.verify.v2: "
        f"schema folder {SCHEMAS}/services/nocr.person.verify.v2 is missing"
    ]


def test_duplicate_policy(tmp_path: Path) -> None:
    """A second policy for the same requester and service is reported."""
    policies = POLICIES + POLICIES.removeprefix("policies:\n")
    assert _problems(tmp_path, policies=policies) == [
        "policies.yaml:7:16: policy TAX/registration -> nocr.person.verify.v1: defined twice; "
        "list all purposes of a requester and service in one policy (first at line 2)"
    ]


def test_duplicate_purpose(tmp_path: Path) -> None:
    """A purpose listed twice in one policy is reported at the second."""
    policies = POLICIES + "      - code: tax-registration\n        legal_basis: Again.\n"
    assert _problems(tmp_path, policies=policies) == [
        "policies.yaml:7:15: policy TAX/registration -> nocr.person.verify.v1: "
        "purpose tax-registration is listed twice"
    ]


@pytest.mark.parametrize(
    ("old", "new", "position", "fragment"),
    [
        ("code: NOCR", "code: nocr", "agencies.yaml:2:11", "agency code 'nocr' must be"),
        ("code: NOCR", "code: NOCR--X", "agencies.yaml:2:11", "agency code 'NOCR--X' must be"),
        ("code: identity", "code: Identity", "agencies.yaml:5:15", "subsystem code 'Identity'"),
    ],
)
def test_invalid_agency_and_subsystem_codes(
    tmp_path: Path, old: str, new: str, position: str, fragment: str
) -> None:
    """Agency and subsystem codes must follow their formats."""
    problems = _problems(tmp_path, agencies=AGENCIES.replace(old, new, 1))
    assert problems[0].startswith(position)
    assert fragment in problems[0]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("Nocr.person.verify", "must be at least two dot-separated lower-case segments"),
        ("verify", "must be at least two dot-separated lower-case segments"),
        ("nocr.v2.verify", "must not contain a version-like segment"),
    ],
)
def test_invalid_service_code(tmp_path: Path, code: str, fragment: str) -> None:
    """Service codes must be dotted lower-case segments without a version-like one."""
    services = SERVICES.replace("code: nocr.person.verify", f"code: {code}")
    problems = _problems(tmp_path, services=services)
    assert len(problems) == 2  # the entry, and the policy naming the old id
    assert problems[1].startswith("services.yaml:2:11: service ")
    assert fragment in problems[1]


def test_invalid_purpose_code(tmp_path: Path) -> None:
    """Purpose codes must be lower-case words joined by hyphens."""
    policies = POLICIES.replace("code: tax-registration", "code: Tax_Registration")
    problems = _problems(tmp_path, policies=policies)
    assert len(problems) == 1
    assert problems[0].startswith(
        "policies.yaml:5:15: policy TAX/registration -> nocr.person.verify.v1: purposes.0.code:"
    )


def test_policy_needs_a_purpose(tmp_path: Path) -> None:
    """A policy with an empty purpose list grants nothing and is refused."""
    policies = POLICIES.split("    purposes:", maxsplit=1)[0] + "    purposes: []\n"
    problems = _problems(tmp_path, policies=policies)
    assert len(problems) == 1
    assert problems[0].startswith("policies.yaml:4:15: ")
    assert "purposes: Tuple should have at least 1 item" in problems[0]


def test_default_deadline_over_max(tmp_path: Path) -> None:
    """A default deadline longer than the SLA maximum is reported at the default."""
    services = SERVICES.replace("default_deadline_seconds: 5", "default_deadline_seconds: 45")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:6:31: service nocr.person.verify.v1: "
        "default_deadline_seconds (45) exceeds max_deadline_seconds (30)"
    ]


def test_unknown_enum_value(tmp_path: Path) -> None:
    """Classification (and the other enums) accept only their listed values."""
    services = SERVICES.replace("CONFIDENTIAL", "SECRET")
    problems = _problems(tmp_path, services=services)
    assert len(problems) == 1
    assert problems[0].startswith("services.yaml:8:21: service nocr.person.verify.v1: ")
    assert "classification" in problems[0]


def test_unknown_and_missing_keys(tmp_path: Path) -> None:
    """An unknown key and a missing required key are each reported where they belong."""
    services = SERVICES.replace("    title: Person identity verification\n", "    owner: x\n")
    assert _problems(tmp_path, services=services) == [
        "services.yaml:2:5: service nocr.person.verify.v1: missing required key 'title'",
        "services.yaml:5:12: service nocr.person.verify.v1: unknown key 'owner'",
    ]


def test_renamed_agency_leaves_references_dangling(tmp_path: Path) -> None:
    """An agency whose code is invalid is reported, and so is each reference to its old code."""
    problems = _problems(tmp_path, agencies=AGENCIES.replace("code: NOCR", "code: nocr"))
    assert problems[1] == (
        "services.yaml:4:15: service nocr.person.verify.v1: provider names unknown agency NOCR"
    )
    assert len(problems) == 2


def test_invalid_entry_does_not_cascade(tmp_path: Path) -> None:
    """An agency entry that fails validation is not also reported as an unknown provider."""
    agencies = AGENCIES.replace("    name: Civil registry\n", "")
    assert _problems(tmp_path, agencies=agencies) == [
        "agencies.yaml:2:5: agency NOCR: missing required key 'name'"
    ]


def test_malformed_yaml_is_located(tmp_path: Path) -> None:
    """Broken YAML syntax is reported with the parser's position, other files still checked."""
    services = SERVICES.replace("    version: 1\n", "    version: [1\n")
    policies = POLICIES.replace("TAX/registration", "CUSTOMS")
    problems = _problems(tmp_path, services=services, policies=policies)
    assert len(problems) == 2
    assert problems[0].startswith("policies.yaml:2:16: ")
    assert problems[1].startswith("services.yaml:")
    assert "malformed YAML" in problems[1]


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    """A key given twice in one mapping is reported (YAML loaders silently keep the last)."""
    services = SERVICES + "    title: Another title\n"
    assert _problems(tmp_path, services=services) == [
        "services.yaml:9:5: key 'title' is given twice"
    ]


def test_wrong_top_level_shape(tmp_path: Path) -> None:
    """A file without its top-level list, or with stray keys, is reported."""
    problems = _problems(tmp_path, policies="rules:\n  - a\n")
    assert problems == [
        "policies.yaml:1:1: unknown top-level key 'rules'",
        "policies.yaml:1:1: missing top-level key 'policies'",
    ]


def test_empty_sections_are_valid(tmp_path: Path) -> None:
    """A catalog may have no policies yet (`policies:` with no entries)."""
    assert _problems(tmp_path, policies="policies:\n") == []


@pytest.mark.parametrize("name", ["agencies.yaml", "services.yaml", "policies.yaml"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    """A missing file is one problem; references into it are not reported as well."""
    _problems(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path, SCHEMAS)
    assert caught.value.problems == [f"{tmp_path}/{name}:1:1: file is missing"]


def test_missing_folder(tmp_path: Path) -> None:
    """A catalog folder that does not exist is one problem, not three."""
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "nowhere", SCHEMAS)
    assert len(caught.value.problems) == 1


# --- Schema files -------------------------------------------------------------------------------


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A schemas folder holding a copy of one real service's schemas."""
    root = tmp_path / "schemas"
    shutil.copytree(
        SCHEMAS / "services" / "nocr.person.verify.v1",
        root / "services" / "nocr.person.verify.v1",
    )
    (tmp_path / "catalog").mkdir()
    return root


def _schema_problems(tmp_path: Path, schemas: Path) -> list[str]:
    return [
        problem.replace(f"{tmp_path}/", "")
        for problem in _problems(tmp_path / "catalog", schemas=schemas)
    ]


def _folder(schemas: Path) -> Path:
    return schemas / "services" / "nocr.person.verify.v1"


def test_copied_schemas_are_valid(tmp_path: Path, schemas: Path) -> None:
    """The schema tests below start from a valid copy."""
    assert _schema_problems(tmp_path, schemas) == []


def test_missing_schema_folder(tmp_path: Path, schemas: Path) -> None:
    """A service without its schema folder is reported at the service entry."""
    shutil.rmtree(_folder(schemas))
    assert _schema_problems(tmp_path, schemas) == [
        "services.yaml:2:5: service nocr.person.verify.v1: "
        "schema folder schemas/services/nocr.person.verify.v1 is missing"
    ]


def test_missing_response_schema(tmp_path: Path, schemas: Path) -> None:
    """A service needs at least revision 1 of both request and response."""
    for path in _folder(schemas).glob("response-*.avsc"):
        path.unlink()
    assert _schema_problems(tmp_path, schemas) == [
        "services.yaml:2:5: service nocr.person.verify.v1: "
        "no response schema: add response-1.avsc to its schema folder"
    ]


def test_revision_gap(tmp_path: Path, schemas: Path) -> None:
    """Revisions run 1, 2, ... without gaps."""
    folder = _folder(schemas)
    (folder / "request-2.avsc").rename(folder / "request-3.avsc")
    assert _schema_problems(tmp_path, schemas) == [
        "services.yaml:2:5: service nocr.person.verify.v1: "
        "request revisions of nocr.person.verify.v1 must run 1, 2, ... without gaps; found 1, 3"
    ]


def test_badly_named_schema_file(tmp_path: Path, schemas: Path) -> None:
    """A .avsc file that is not request-N or response-N is reported."""
    (_folder(schemas) / "request-v3.avsc").write_text("{}", encoding="utf-8")
    assert _schema_problems(tmp_path, schemas) == [
        "schemas/services/nocr.person.verify.v1/request-v3.avsc:1:1: "
        "schema file name must be request-<revision>.avsc or response-<revision>.avsc"
    ]


def test_invalid_json_schema_is_located(tmp_path: Path, schemas: Path) -> None:
    """A schema file that is not JSON is reported at the JSON parser's line and column."""
    (_folder(schemas) / "response-2.avsc").write_text('{\n  "type": "record",\n  oops\n}\n')
    assert _schema_problems(tmp_path, schemas) == [
        "schemas/services/nocr.person.verify.v1/response-2.avsc:3:3: "
        "invalid JSON: Expecting property name enclosed in double quotes"
    ]


def test_invalid_avro_schema(tmp_path: Path, schemas: Path) -> None:
    """A JSON file that is not an Avro schema is reported with fastavro's reason."""
    path = _folder(schemas) / "response-2.avsc"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["fields"][0]["type"] = "strin"
    path.write_text(json.dumps(document), encoding="utf-8")
    problems = _schema_problems(tmp_path, schemas)
    assert len(problems) == 1
    assert problems[0].startswith(
        "schemas/services/nocr.person.verify.v1/response-2.avsc:1:1: not a valid Avro schema:"
    )


def test_wrong_namespace(tmp_path: Path, schemas: Path) -> None:
    """A record whose namespace does not end with the service id is reported at that line."""
    path = _folder(schemas) / "request-1.avsc"
    text = path.read_text(encoding="utf-8").replace("verify.v1", "verify.v2")
    path.write_text(text, encoding="utf-8")
    problems = _schema_problems(tmp_path, schemas)
    assert len(problems) == 1
    assert problems[0].startswith("schemas/services/nocr.person.verify.v1/request-1.avsc:4:1: ")
    assert "it must end with 'nocr.person.verify.v1'" in problems[0]


def test_record_renamed_between_revisions(tmp_path: Path, schemas: Path) -> None:
    """Every revision of one role keeps the record's full name."""
    path = _folder(schemas) / "request-2.avsc"
    text = path.read_text(encoding="utf-8").replace('"VerifyRequest"', '"CheckRequest"')
    path.write_text(text, encoding="utf-8")
    assert _schema_problems(tmp_path, schemas) == [
        "schemas/services/nocr.person.verify.v1/request-2.avsc:1:1: record is named "
        "ir.gov.nocr.person.verify.v1.CheckRequest but revision 1 names it "
        "ir.gov.nocr.person.verify.v1.VerifyRequest; every revision keeps one name"
    ]
