"""The mapping language of connector configs, and the public surface of ``connectors``."""

from __future__ import annotations

import datetime as dt

import pytest

import connectors
from connectors._mapping import MappingError, fill, jsonable, render

SCOPE = {
    "payload": {"national_id": "0012345678", "birth_date": dt.date(1990, 3, 21), "tags": ["a"]},
    "result": {"Status": "A", "Person": {"Names": [{"First": "Sara"}]}, "Seen": "2024-05-01"},
}


def test_paths_literals_and_nesting_render() -> None:
    """``$root.path[0]`` resolves, other scalars stay, dicts and lists render item-wise."""
    template = {
        "id": "$payload.national_id",
        "first": "$result.Person.Names[0].First",
        "missing": "$result.Person.Names[5].First",
        "fixed": 3,
        "dollar": "$$5",
        "list": ["$payload.tags[0]", "x"],
    }
    assert render(template, SCOPE) == {
        "id": "0012345678",
        "first": "Sara",
        "missing": None,
        "fixed": 3,
        "dollar": "$5",
        "list": ["a", "x"],
    }


def test_lookup_tables_defaults_and_conversions() -> None:
    """``$from`` with ``$map``, ``$default`` and ``$as`` (dates from ISO text)."""
    status = {"$from": "result.Status", "$map": {"A": "VALID"}, "$default": "UNKNOWN"}
    assert render(status, SCOPE) == "VALID"
    assert render({**status, "$from": "result.Nope"}, SCOPE) == "UNKNOWN"
    assert render({"$from": "result.Seen", "$as": "date"}, SCOPE) == dt.date(2024, 5, 1)
    with pytest.raises(MappingError, match="cannot convert"):
        render({"$from": "result.Status", "$as": "int"}, SCOPE)


def test_unknown_roots_and_bad_paths_are_mapping_errors() -> None:
    """A typo in a template is a MappingError naming it, not a silent None."""
    with pytest.raises(MappingError, match="unknown root 'reslt'"):
        render("$reslt.Status", SCOPE)
    with pytest.raises(MappingError, match="bad path"):
        render("$result..x", SCOPE)


def test_url_templates_quote_values_and_refuse_empty_ones() -> None:
    """``{path}`` placeholders are URL-quoted; a missing value is an error, not ``None``."""
    assert (
        fill("/p/{payload.national_id}/{payload.birth_date}", SCOPE) == "/p/0012345678/1990-03-21"
    )
    scope = {"payload": {"q": "a/b c"}}
    assert fill("/s/{payload.q}", scope) == "/s/a%2Fb%20c"
    with pytest.raises(MappingError, match="empty"):
        fill("/s/{payload.nope}", scope)


def test_jsonable_turns_dates_into_text() -> None:
    """JSON bodies carry dates as ISO text."""
    assert jsonable({"d": dt.date(2020, 1, 2), "n": [1, None]}) == {
        "d": "2020-01-02",
        "n": [1, None],
    }


def test_public_surface_is_short_and_sorted() -> None:
    """``connectors.__all__`` names exist and are kept sorted."""
    assert connectors.__all__ == sorted(connectors.__all__)
    assert all(hasattr(connectors, name) for name in connectors.__all__)
