"""Fixtures shared by the real-broker tests (those of the whole suite are in tests/conftest.py).

A module that needs a different ``bus`` defines its own fixture of that name, which takes
precedence over this one there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange import ExchangeSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bus(settings: ExchangeSettings) -> ExchangeSettings:
    """The test's settings on two partitions with the demo catalog and the repo's schemas."""
    return settings.model_copy(
        update={
            "partitions": 2,
            "catalog_path": ROOT / "catalog" / "demo",
            "schemas_path": ROOT / "schemas",
        }
    )
