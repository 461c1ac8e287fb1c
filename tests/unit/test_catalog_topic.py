"""Catalog snapshots without Kafka: the record format, versions, validation and refusals."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange._catalog import load_catalog
from exchange._catalog_topic import (
    CatalogSnapshot,
    decode_snapshot,
    encode_snapshot,
    load_files,
    load_snapshot,
    read_snapshot,
    snapshot_version,
)
from exchange._errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so catalogs loaded from files name relative paths."""
    monkeypatch.chdir(ROOT)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog" / "demo", folder)
    return folder


def _with_file(snapshot: CatalogSnapshot, name: str, text: str) -> CatalogSnapshot:
    """``snapshot`` with one file replaced, correctly versioned (a well-formed snapshot)."""
    return CatalogSnapshot.of({**snapshot.files, name: text}, published_at=WHEN)


def test_files_to_snapshot_to_catalog_equals_the_files(repo: None) -> None:
    """Encoding, decoding and loading a snapshot gives the Catalog, schema store and version
    that loading the same files gives."""
    catalog, schemas = Path("catalog/demo"), Path("schemas")
    snapshot = decode_snapshot(encode_snapshot(read_snapshot(catalog, schemas, now=WHEN)))
    live, files = load_snapshot(snapshot, schemas), load_files(catalog, schemas)
    assert live.catalog == files.catalog == load_catalog(catalog, schemas)
    assert sorted(s.fingerprint for s in live.store) == sorted(s.fingerprint for s in files.store)
    assert {s.name: s.fingerprint for s in live.store} == {
        s.name: s.fingerprint for s in files.store
    }
    assert live.version == files.version == snapshot.version
    assert (live.origin, live.published_at) == ("topic", WHEN)


def test_the_record_is_json_with_the_catalog_and_the_services_schemas(repo: None) -> None:
    """The value is UTF-8 JSON (format 1) holding the three YAML files and each declared
    service's schema files, and nothing of the envelope."""
    value = json.loads(encode_snapshot(read_snapshot(Path("catalog/demo"), Path("schemas"))))
    assert value["format"] == 1
    assert len(value["version"]) == 64
    names = set(value["files"])
    assert {"catalog/agencies.yaml", "catalog/services.yaml", "catalog/policies.yaml"} <= names
    assert "schemas/services/nocr.person.verify.v1/request-2.avsc" in names
    assert not [name for name in names if "envelope" in name]


def test_the_version_depends_on_the_files_only() -> None:
    """Same files at another time: same version; one byte changed: another version."""
    files = {"catalog/agencies.yaml": "agencies: []\n"}
    first = CatalogSnapshot.of(files, published_at=WHEN)
    later = CatalogSnapshot.of(dict(files), published_at=datetime.now(UTC))
    assert first.version == later.version == snapshot_version(files)
    assert snapshot_version({"catalog/agencies.yaml": "agencies: [] \n"}) != first.version


def test_an_altered_snapshot_is_refused() -> None:
    """A file changed after the version was computed (or a truncated copy) is refused."""
    value = json.loads(encode_snapshot(read_snapshot(ROOT / "catalog/demo", ROOT / "schemas")))
    value["files"]["catalog/policies.yaml"] += "\n# changed\n"
    with pytest.raises(CatalogError, match="version is not the SHA-256"):
        decode_snapshot(json.dumps(value).encode())


@pytest.mark.parametrize(
    "name",
    ["../catalog/agencies.yaml", "/etc/passwd", "schemas/services/../../x.avsc", "catalog/x.yaml"],
)
def test_a_snapshot_naming_a_path_outside_the_layout_is_refused(name: str) -> None:
    """Only catalog/*.yaml and schemas/services/<id>/<file>.avsc may be written anywhere."""
    files = {name: "x"}
    value = {"format": 1, "version": snapshot_version(files), "published_at": WHEN.isoformat()}
    with pytest.raises(CatalogError, match="names files it may not") as caught:
        decode_snapshot(json.dumps({**value, "files": files}).encode())
    assert caught.value.problems == [f"{name}: not a catalog or service schema file"]


@pytest.mark.parametrize("value", [None, b"\xff", b"[]", b'{"format": 2}', b'{"format": 1}'])
def test_values_that_are_no_snapshot_are_refused(value: bytes | None) -> None:
    """A tombstone, bytes that are not JSON, or JSON of another shape: CatalogError."""
    with pytest.raises(CatalogError, match="not a catalog snapshot"):
        decode_snapshot(value)


def test_a_well_formed_snapshot_of_an_invalid_catalog_is_refused_with_its_problems() -> None:
    """Validation is the files' own: a policy for an unknown service is reported at its line
    in catalog/policies.yaml, by the snapshot's path, not a temporary folder's."""
    good = read_snapshot(ROOT / "catalog/demo", ROOT / "schemas")
    policies = good.files["catalog/policies.yaml"].replace(
        "service: post.address.lookup.v1", "service: post.address.lookup.v9", 1
    )
    with pytest.raises(CatalogError, match="has 1 problem") as caught:
        load_snapshot(_with_file(good, "catalog/policies.yaml", policies), ROOT / "schemas")
    (problem,) = caught.value.problems
    assert problem.startswith("catalog/policies.yaml:")
    assert "post.address.lookup.v9" in problem


def test_a_snapshot_with_a_broken_schema_is_refused() -> None:
    """A service schema that does not parse makes the snapshot invalid."""
    good = read_snapshot(ROOT / "catalog/demo", ROOT / "schemas")
    name = "schemas/services/nocr.person.verify.v1/response-2.avsc"
    with pytest.raises(CatalogError) as caught:
        load_snapshot(_with_file(good, name, "{not json"), ROOT / "schemas")
    assert any(name in problem for problem in caught.value.problems)


def test_publishing_an_invalid_folder_reports_the_problems_catalog_check_does(
    tmp_path: Path,
) -> None:
    """read_snapshot refuses an invalid folder with exactly load_catalog's problem lines."""
    folder = _copy(tmp_path)
    text = (folder / "policies.yaml").read_text()
    (folder / "policies.yaml").write_text(text.replace("requester: TAX/audit", "requester: TAXX"))
    with pytest.raises(CatalogError) as expected:
        load_catalog(folder, ROOT / "schemas")
    with pytest.raises(CatalogError) as caught:
        read_snapshot(folder, ROOT / "schemas")
    assert caught.value.problems == expected.value.problems
    assert caught.value.problems
