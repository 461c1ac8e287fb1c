"""Connector configs: one clear error per problem with its field path; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors._config import ProviderConfig, load_config, parse_config
from connectors.rest import BearerAuth, RestConfig
from exchange._errors import ConnectorConfigError

GOOD = {
    "kind": "rest",
    "name": "post-address",
    "agency": "POST",
    "base_url": "http://127.0.0.1:8080",
    "auth": {"type": "bearer", "token": "t0ps3cret"},
    "services": [{"service": "post.address.lookup.v1", "path": "/a/{payload.postal_code}"}],
}


def _problems(raw: object, model: type[ProviderConfig] | None = None) -> list[str]:
    with pytest.raises(ConnectorConfigError) as caught:
        parse_config(raw, model)
    return caught.value.problems


def test_a_valid_config_loads_with_its_kind_class() -> None:
    """The registry picks the config class from ``kind``."""
    config = parse_config(GOOD)
    assert isinstance(config, RestConfig)
    assert config.services[0].service == "post.address.lookup.v1"


def test_every_problem_is_reported_once_with_its_field_path() -> None:
    """Four mistakes → four lines, each naming the field path; no bogus list-length line."""
    raw = {
        **GOOD,
        "agency": "post",
        "retry": {"attempts": 0},
        "services": [{"service": "post.address.lookup.v1"}],
        "colour": "blue",
    }
    problems = _problems(raw)
    assert len(problems) == 4, problems
    assert problems[0].startswith("agency: ")
    assert problems[1].startswith("retry.attempts: ")
    assert problems[2] == "services[0].path: Field required"
    assert problems[3] == "colour: unknown field (a typo?)"


def test_errors_never_show_secret_values() -> None:
    """A wrong secret's value appears neither in the problems nor in the message."""
    raw = {**GOOD, "auth": {"type": "bearer", "token": "t0ps3cret", "extra": "t0ps3cret"}}
    with pytest.raises(ConnectorConfigError) as caught:
        parse_config(raw)
    assert "t0ps3cret" not in caught.value.message
    assert "t0ps3cret" not in repr(parse_config(GOOD))


def test_environment_references_fill_secrets_and_unset_ones_are_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``${NAME}`` reads the environment; an unset variable is a problem at its path."""
    raw = {**GOOD, "auth": {"type": "bearer", "token": "${API_TOKEN}"}}
    monkeypatch.setenv("API_TOKEN", "from-env")
    config = parse_config(raw)
    assert isinstance(config, RestConfig)
    assert isinstance(config.auth, BearerAuth)
    assert config.auth.token.get_secret_value() == "from-env"
    monkeypatch.delenv("API_TOKEN")
    assert _problems(raw) == ["auth.token: environment variable API_TOKEN unset"]


def test_unknown_kind_and_missing_kind_are_clear() -> None:
    """No kind, or a kind nobody provides, is one problem at ``kind``."""
    assert _problems({"name": "x"}) == ["kind: field required (one of `exchange connector list`)"]
    assert _problems({**GOOD, "kind": "telex"}) == ["kind: unknown connector 'telex'"]


def test_files_with_bad_yaml_or_no_mapping_are_one_line(tmp_path: Path) -> None:
    """A YAML syntax error names its line; a list at the top is refused."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: rest\nname: [unclosed\n")
    with pytest.raises(ConnectorConfigError, match=r"broken.yaml is not valid YAML: line \d+"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- kind: rest\n")
    with pytest.raises(ConnectorConfigError, match="must be a mapping"):
        load_config(listed)


def test_each_builtin_kind_exports_a_json_schema() -> None:
    """The provider kinds' schemas mark secrets as write-only passwords."""
    schema = RestConfig.model_json_schema()
    assert schema["properties"]["kind"]["const"] == "rest"
    bearer = schema["$defs"]["BearerAuth"]["properties"]["token"]
    assert bearer["format"] == "password"
