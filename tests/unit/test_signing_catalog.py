"""Signatures in the catalog files, the ``exchange keys`` command and the envelope revisions."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from exchange._catalog import load_catalog
from exchange._compat import check_pair
from exchange._errors import CatalogError
from exchange._signing import SignaturePolicy, Signer
from exchange.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE = ROOT / "schemas" / "envelope"
SIGNER = Signer.generate("TAX")


def _catalog(tmp_path: Path, *, key_id: str | None = None, required: str = "") -> Path:
    """The demo catalog with one TAX key and, if asked, ``signatures: required`` on ``required``
    (an agency code or a service id)."""
    folder = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog" / "demo", folder)
    agencies = yaml.safe_load((folder / "agencies.yaml").read_text())
    for agency in agencies["agencies"]:
        if agency["code"] == "TAX":
            public = base64.b64encode(SIGNER.public_key).decode()
            agency["keys"] = [{"id": key_id or SIGNER.key_id, "public_key": public}]
        if agency["code"] == required:
            agency["signatures"] = "required"
    (folder / "agencies.yaml").write_text(yaml.safe_dump(agencies, sort_keys=False))
    services = yaml.safe_load((folder / "services.yaml").read_text())
    for service in services["services"]:
        if f"{service['code']}.v{service['version']}" == required:
            service["signatures"] = "required"
    (folder / "services.yaml").write_text(yaml.safe_dump(services, sort_keys=False))
    return folder


def test_keys_and_policies_load_from_yaml(tmp_path: Path) -> None:
    """An agency's keys and a service's signatures: required come out of the YAML files."""
    catalog = load_catalog(_catalog(tmp_path, required="tax.clearance.status.v1"), ROOT / "schemas")
    tax = catalog.agency("TAX")
    service = catalog.service("tax.clearance.status.v1")
    assert tax is not None
    assert service is not None
    assert list(tax.verifiers) == [SIGNER.key_id]
    assert (tax.signatures, service.signatures) == (
        SignaturePolicy.OPTIONAL,
        SignaturePolicy.REQUIRED,
    )


def test_a_wrong_key_id_is_reported_at_its_line(tmp_path: Path) -> None:
    """A key id that is not its key's is a catalog problem naming agencies.yaml."""
    with pytest.raises(CatalogError) as caught:
        load_catalog(_catalog(tmp_path, key_id="0" * 16), ROOT / "schemas")
    assert any("agencies.yaml" in p and "key id" in p for p in caught.value.problems)


@pytest.mark.parametrize(
    ("required", "who"), [("NOCR", "agency"), ("nocr.person.verify.v1", "provider")]
)
def test_requiring_signatures_from_an_agency_without_keys_is_refused(
    tmp_path: Path, required: str, who: str
) -> None:
    """signatures: required is refused when nobody could sign (NOCR lists no key)."""
    with pytest.raises(CatalogError) as caught:
        load_catalog(_catalog(tmp_path, required=required), ROOT / "schemas")
    assert any("signatures are required" in p for p in caught.value.problems), who


def test_keys_new_writes_a_pair_and_prints_its_catalog_entry(tmp_path: Path) -> None:
    """The private key file, the public key, and a keys: entry the catalog accepts."""
    result = CliRunner().invoke(app, ["keys", "new", "TAX", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert Path(report["private_key_file"]).read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert report["private_key_file"].endswith(f"TAX-{report['key_id']}.key")
    text = CliRunner().invoke(app, ["keys", "new", "TAX", "--out", str(tmp_path)]).output
    snippet = yaml.safe_load(text.split("agencies.yaml:\n", 1)[1].replace("    # ...\n", ""))
    assert snippet[0]["keys"][0]["id"] in text
    assert "PRIVATE" not in text


def test_keys_new_refuses_a_code_that_is_not_an_agency_code(tmp_path: Path) -> None:
    """Lower case is not an agency code: exit 1, nothing written."""
    result = CliRunner().invoke(app, ["keys", "new", "tax", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("record", ["InquiryOutcome", "AuditRecord"])
def test_envelope_revision_2_and_1_read_each_other(record: str) -> None:
    """Revision 2 reads revision-1 records, and revision 1 reads revision 2 (BAD_SIGNATURE
    as its enum default OTHER, the signature field skipped): the Apache checker agrees."""
    current = (ENVELOPE / f"{record}.avsc").read_text()
    previous = (ENVELOPE / f"{record}-1.avsc").read_text()
    assert check_pair(current, previous) == ()
    assert check_pair(previous, current) == ()
