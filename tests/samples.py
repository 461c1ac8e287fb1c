"""Sample payloads of the identity-verification service, shared by the tests.

``PERSON`` is a request (``national_id`` with a valid check digit) and ``VERDICT`` the
response a provider gives for it; :func:`verdict` builds a new all-matching response for any
id. Tests share these objects: build variants by copying (``{**PERSON, "last_name": "Karimi"}``),
never by changing them in place.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

PERSON: Final[dict[str, Any]] = {
    "national_id": "0012345678",
    "birth_date": dt.date(1990, 3, 21),
    "first_name": "Sara",
    "last_name": "Ahmadi",
}

VERDICT: Final[dict[str, Any]] = {
    "national_id": "0012345678",
    "national_id_status": "VALID",
    "birth_date_match": True,
    "first_name_match": "EXACT",
    "last_name_match": "SIMILAR",
    "alive": True,
    "verified_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
}


def verdict(national_id: str, status: str = "VALID") -> dict[str, Any]:
    """A new response for ``national_id``: ``status``, every field matching, verified now."""
    return {
        "national_id": national_id,
        "national_id_status": status,
        "birth_date_match": True,
        "first_name_match": "EXACT",
        "last_name_match": "EXACT",
        "alive": True,
        "verified_at": dt.datetime.now(dt.UTC),
    }
