"""The connector scaffold without running the skeleton: which files each kind writes, every
placeholder filled, and the kind checked (the generated tests run in the integration suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors._scaffold import scaffold
from exchange import ConfigError, ExchangeSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ExchangeSettings(catalog_path=ROOT / "catalog" / "demo", schemas_path=ROOT / "schemas")


def test_the_requester_skeleton_has_a_source_an_adapter_and_the_kit(tmp_path: Path) -> None:
    """--kind requester writes a source, a mapping, the stand-in and tests using the kit."""
    written = scaffold("acme-bank", tmp_path, settings=SETTINGS, kind="requester")
    names = {str(path.relative_to(tmp_path)) for path in written}
    assert {
        "acme_bank_connector/_source.py",
        "acme_bank_connector/_mapping.py",
        "tests/conftest.py",
        "tests/legacy_app.py",
        "tests/test_conformance.py",
        "acme-bank.yaml",
    } <= names
    conformance = (tmp_path / "tests" / "test_conformance.py").read_text(encoding="utf-8")
    assert "check_requester" in conformance
    assert "acme_bank_connector:AcmeBankSource" in conformance


@pytest.mark.parametrize("kind", ["provider", "requester"])
def test_every_placeholder_is_filled(tmp_path: Path, kind: str) -> None:
    """No __NAME__-style placeholder is left in any file or file name."""
    placeholders = ("__NAME__", "__PACKAGE__", "__CLASS__", "__CATALOG__", "__SCHEMAS__")
    for path in scaffold("acme", tmp_path, settings=SETTINGS, kind=kind):
        text = path.read_text(encoding="utf-8")
        for placeholder in placeholders:
            assert placeholder not in str(path.relative_to(tmp_path)), path
            assert placeholder not in text, (path, placeholder)


def test_an_unknown_kind_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A kind other than provider or requester names both and writes nothing."""
    target = tmp_path / "x"
    with pytest.raises(ConfigError, match="provider, requester"):
        scaffold("acme", target, settings=SETTINGS, kind="sink")
    assert not target.exists()
