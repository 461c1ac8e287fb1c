"""docs/connectors-builtin.md stays true: every YAML example is a valid config of its kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connectors._config import parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors-builtin.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_an_example_of_each_kind() -> None:
    """One example per built-in connector described on the page."""
    kinds = [yaml.safe_load(example)["kind"] for example in EXAMPLES]
    assert kinds == ["sql", "outbox", "filedrop"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda text: text.split()[1])
def test_each_example_is_a_valid_config(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example validates against its kind's config class (secrets from the environment)."""
    monkeypatch.setenv("REGISTRY_DB_URL", "postgresql+asyncpg://reader:x@127.0.0.1/registry")
    monkeypatch.setenv("TAX_DB_URL", "postgresql+asyncpg://exchange:x@127.0.0.1/tax")
    config = parse_config(yaml.safe_load(example))
    assert config.name
