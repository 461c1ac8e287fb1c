"""The schema evolution gate: which pairs each compatibility mode checks, and its verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exchange._catalog import CompatibilityMode, SchemaRevision, Service, load_catalog
from exchange._compat import check_catalog_schemas, check_pair, check_service_schemas

ROOT = Path(__file__).resolve().parents[2]
INCOMPATIBLE = ROOT / "tests" / "fixtures" / "catalogs" / "incompatible"

NAME = {"type": "record", "name": "R", "namespace": "x.demo.thing.v1"}
A = {"name": "a", "type": "int", "doc": "a"}
B_REQUIRED = {"name": "b", "type": "string", "doc": "b"}
B_OPTIONAL = {**B_REQUIRED, "default": "none"}


def _text(*fields: dict[str, Any]) -> str:
    return json.dumps({**NAME, "fields": list(fields)})


def _service(tmp_path: Path, mode: CompatibilityMode, *responses: str) -> Service:
    """A service whose response revisions are the given schema texts, oldest first."""
    revisions = []
    for number, text in enumerate(responses, start=1):
        path = tmp_path / f"response-{number}.avsc"
        path.write_text(text, encoding="utf-8")
        revisions.append(
            SchemaRevision(
                role="response", revision=number, path=path, full_name="x.R", fingerprint=b"\0" * 8
            )
        )
    return Service.model_validate(
        {
            "code": "demo.thing",
            "version": 1,
            "provider": "DEMO",
            "title": "Demo",
            "default_deadline_seconds": 1,
            "max_deadline_seconds": 2,
            "classification": "PUBLIC",
            "compatibility": mode,
            "response_schemas": revisions,
        }
    )


def _verdicts(service: Service) -> list[tuple[int, int, bool]]:
    return [
        (c.reader_revision, c.writer_revision, c.compatible) for c in check_service_schemas(service)
    ]


def test_shipped_schemas_pass_the_gate() -> None:
    """Every revision pair of the demo catalog is compatible under its service's mode."""
    catalog = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
    checks = check_catalog_schemas(catalog)
    assert [str(c) for c in checks if not c.compatible] == []
    checked = {(c.service_id, c.role, c.direction) for c in checks}
    assert ("nocr.person.verify.v1", "response", "forward") in checked  # FULL: both ways
    assert ("tax.clearance.status.v1", "response", "backward") in checked


def test_planted_incompatible_revision_fails() -> None:
    """The fixture's response-2 adds a field without a default: BACKWARD fails, with reason."""
    catalog = load_catalog(INCOMPATIBLE, INCOMPATIBLE / "schemas")
    [check] = check_catalog_schemas(catalog)
    assert not check.compatible
    assert (check.service_id, check.role) == ("post.address.lookup.v1", "response")
    assert (check.reader_revision, check.writer_revision) == (2, 1)
    assert check.reasons == ("reader_field_missing_default_value: province (at /fields/1)",)


def test_added_field_with_default_is_fully_compatible(tmp_path: Path) -> None:
    """Adding an optional field with a default passes BACKWARD and FORWARD alike."""
    service = _service(tmp_path, CompatibilityMode.FULL, _text(A), _text(A, B_OPTIONAL))
    assert _verdicts(service) == [(2, 1, True), (1, 2, True)]


def test_added_required_field_is_forward_but_not_backward(tmp_path: Path) -> None:
    """A new field without a default: old readers ignore it, new readers cannot fill it."""
    old, new = _text(A), _text(A, B_REQUIRED)
    backward = _service(tmp_path, CompatibilityMode.BACKWARD, old, new)
    forward = _service(tmp_path, CompatibilityMode.FORWARD, old, new)
    assert _verdicts(backward) == [(2, 1, False)]
    assert _verdicts(forward) == [(1, 2, True)]


def test_removed_required_field_is_backward_but_not_forward(tmp_path: Path) -> None:
    """Dropping a field without a default: new readers skip it, old readers miss it."""
    old, new = _text(A, B_REQUIRED), _text(A)
    assert _verdicts(_service(tmp_path, CompatibilityMode.BACKWARD, old, new)) == [(2, 1, True)]
    assert _verdicts(_service(tmp_path, CompatibilityMode.FORWARD, old, new)) == [(1, 2, False)]


def test_transitive_mode_checks_every_earlier_revision(tmp_path: Path) -> None:
    """Revision 3 must read revision 1 under BACKWARD_TRANSITIVE; plain BACKWARD skips that."""
    # 1 lacks b; 2 adds b with a default; 3 drops the default, so it cannot read 1's data.
    texts = (_text(A), _text(A, B_OPTIONAL), _text(A, B_REQUIRED))
    plain = _service(tmp_path, CompatibilityMode.BACKWARD, *texts)
    transitive = _service(tmp_path, CompatibilityMode.BACKWARD_TRANSITIVE, *texts)
    assert _verdicts(plain) == [(2, 1, True), (3, 2, True)]
    assert _verdicts(transitive) == [(2, 1, True), (3, 1, False), (3, 2, True)]


def test_none_mode_checks_nothing(tmp_path: Path) -> None:
    """NONE skips the gate even for incompatible revisions."""
    service = _service(tmp_path, CompatibilityMode.NONE, _text(A), _text(B_REQUIRED))
    assert _verdicts(service) == []


@pytest.mark.parametrize(
    ("reader", "writer", "reason"),
    [
        (
            _text({"name": "a", "type": "string", "doc": "a"}),
            _text(A),
            "type_mismatch: reader type: string not compatible with writer type: int "
            "(at /fields/0/type)",
        ),
        (
            _text({"name": "a", "type": "long", "doc": "a"}),
            _text(A),
            None,  # int promotes to long
        ),
        (
            json.dumps({**NAME, "name": "S", "fields": [A]}),
            _text(A),
            "name_mismatch: expected: x.demo.thing.v1.R (at /name)",
        ),
    ],
)
def test_check_pair_reasons(reader: str, writer: str, reason: str | None) -> None:
    """check_pair returns the Apache checker's reason and location, or nothing."""
    assert check_pair(reader, writer) == (() if reason is None else (reason,))


def test_enum_symbol_added_needs_a_reader_default(tmp_path: Path) -> None:
    """A new enum symbol is readable by old readers only if their enum has a default."""

    def enum(symbols: list[str], default: str | None) -> str:
        kind: dict[str, Any] = {"type": "enum", "name": "Kind", "symbols": symbols}
        if default is not None:
            kind["default"] = default
        return _text({"name": "k", "type": kind, "doc": "k"})

    with_default = enum(["A", "UNKNOWN"], "UNKNOWN")
    assert check_pair(with_default, enum(["A", "B", "UNKNOWN"], "UNKNOWN")) == ()
    [reason] = check_pair(enum(["A", "UNKNOWN"], None), enum(["A", "B", "UNKNOWN"], None))
    assert reason.startswith("missing_enum_symbols: {'B'}")
