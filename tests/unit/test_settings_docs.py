"""docs/settings.md documents every setting, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exchange import ExchangeSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def _table_rows() -> dict[str, str]:
    """Documented variable -> its table row."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `(EXCHANGE_[A-Z0-9_]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("field", sorted(ExchangeSettings.model_fields))
def test_every_setting_has_a_row(field: str) -> None:
    """Each field has a table row with its variable, type, default and meaning."""
    row = _table_rows().get(f"EXCHANGE_{field.upper()}")
    assert row is not None, f"EXCHANGE_{field.upper()} is not documented in docs/settings.md"
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) >= 4, row
    assert all(cells[:4]), row


def test_no_row_documents_a_setting_that_does_not_exist() -> None:
    """Every documented EXCHANGE_ variable is a field of ExchangeSettings."""
    known = {f"EXCHANGE_{name.upper()}" for name in ExchangeSettings.model_fields}
    assert set(_table_rows()) <= known


def test_documented_simple_defaults_match_the_code() -> None:
    """Literal defaults in the table (numbers, words) are the fields' real defaults."""
    for variable, row in _table_rows().items():
        field = ExchangeSettings.model_fields[variable.removeprefix("EXCHANGE_").lower()]
        documented = [cell.strip() for cell in row.strip("|").split("|")][2]
        if documented == "unset":
            assert field.default is None, variable
        elif re.fullmatch(r"`[^`~]+`", documented):
            assert documented.strip("`") == str(field.default), variable
