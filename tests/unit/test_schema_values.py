"""Legacy text and JSON values read by the Avro request schema."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from connectors._schema_values import CellError, field_readers, from_json

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "R",
    "namespace": "t",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "n", "type": "long"},
        {"name": "f", "type": "double"},
        {"name": "b", "type": "boolean"},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {
            "name": "m",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
        },
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "BLUE"]}},
        {"name": "e2", "type": ["null", "Color"], "default": None},
        {"name": "o", "type": ["null", "string"], "default": None},
        {
            "name": "r",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "when", "type": {"type": "int", "logicalType": "date"}}],
            },
        },
    ],
}


def read(name: str, text: str) -> Any:
    return field_readers(SCHEMA)[name].read(text)


def test_text_is_read_by_type() -> None:
    """Each primitive and logical type from its usual text form."""
    assert read("s", "") == ""
    assert read("n", "-42") == -42
    assert read("f", "2.5") == 2.5
    assert [read("b", v) for v in ("TRUE", "0", "yes", "n")] == [True, False, True, False]
    assert read("d", "1990-03-21") == dt.date(1990, 3, 21)
    assert read("t", "2026-01-02T03:04:05Z") == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert read("t", "2026-01-02T03:04:05").tzinfo is dt.UTC
    assert read("m", "12.30") == decimal.Decimal("12.30")
    assert read("e2", "RED") == "RED"  # a named type referenced by name
    assert read("o", "") is None
    assert read("r", '{"when": "2020-01-01"}') == {"when": "2020-01-01"}


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("n", "4x", "not a long"),
        ("n", "", "empty, but a long is required"),
        ("b", "maybe", "not a boolean"),
        ("d", "21/03/1990", "not an ISO 8601 date"),
        ("r", "{", "not JSON"),
    ],
)
def test_text_that_does_not_fit_says_why(name: str, text: str, reason: str) -> None:
    """The reason is what the .errors file shows on the row's line."""
    with pytest.raises(CellError, match=reason):
        read(name, text)


def test_required_is_false_only_for_fields_with_a_default() -> None:
    """A missing cell of a defaulted field takes the default."""
    readers = field_readers(SCHEMA)
    assert [n for n, r in readers.items() if not r.required] == ["e2", "o"]


def test_json_text_dates_become_dates_and_misfits_stay() -> None:
    """JSON from an outbox row: dates read as dates (nested too); bad ones left for the
    schema check to refuse with a reason."""
    value = from_json(SCHEMA, {"d": "1990-03-21", "r": {"when": "2020-01-01"}, "n": 4, "t": "x"})
    assert value == {
        "d": dt.date(1990, 3, 21),
        "r": {"when": dt.date(2020, 1, 1)},
        "n": 4,
        "t": "x",
    }
