"""Typed connector configuration: the pydantic base every connector's config extends.

A connector's config file is YAML (or JSON)::

    kind: rest                        # which connector (``exchange connector list``)
    name: post-address                # this instance: metrics label, log context, group id
    agency: POST                      # the agency it answers (provider) or asks for (requester)
    concurrency: 16                   # inquiries in progress at once
    retry: {attempts: 5, initial_backoff: 0.2, max_backoff: 5.0, jitter: 0.2}
    circuit: {failure_threshold: 5, probe_interval: 1.0, max_probe_interval: 30.0}
    health: {host: 127.0.0.1, port: 9310}
    services:                         # provider connectors: one binding per service answered
      - service: post.address.lookup.v1
        ...                           # the connector's own fields (URL, operation, mapping)

``${NAME}`` anywhere in a string value is replaced by the environment variable ``NAME`` when
the file is loaded, so secrets need not sit in the file; declare them as ``SecretStr`` and
they print as ``**********`` in logs, reprs and errors.

:func:`load_config` validates the file against the config class of its ``kind`` and raises
one :class:`~exchange.ConnectorConfigError` listing **every** problem, each with its field
path (``services[0].url: field required``) and never the offending value (it may be a
secret). :func:`config_schema` exports a kind's JSON Schema (``exchange connector schema``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from exchange._errors import ConnectorConfigError

__all__ = [
    "CircuitSettings",
    "ConnectorConfig",
    "DatabaseUrl",
    "HealthSettings",
    "ProviderConfig",
    "RequesterConfig",
    "RetrySettings",
    "ServiceBinding",
    "config_problems",
    "load_config",
    "parse_config",
]

C = TypeVar("C", bound="ConnectorConfig")

_AGENCY = r"^[A-Z][A-Z0-9-]*$"
_SUBSYSTEM = r"^[a-z][a-z0-9-]*$"
_SERVICE_ID = r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.v[0-9]+$"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _sqlalchemy_url(value: SecretStr) -> SecretStr:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value.get_secret_value())
    except ArgumentError:  # its message quotes the URL, password included: not passed on
        raise ValueError("not a SQLAlchemy URL (dialect+driver://user@host/db)") from None
    return value


#: A database URL (the sql and outbox connectors): a secret that must parse as a SQLAlchemy URL.
DatabaseUrl = Annotated[SecretStr, AfterValidator(_sqlalchemy_url)]


class _Model(BaseModel):
    """Frozen, and unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RetrySettings(_Model):
    """How a failed call to the legacy system is retried (retriable errors only)."""

    attempts: int = Field(
        default=5,
        ge=1,
        description="Calls per inquiry while the circuit is closed, the first included. "
        "Calls refused by an open circuit do not count: the inquiry waits for recovery "
        "until its deadline instead.",
    )
    initial_backoff: float = Field(default=0.2, gt=0, description="First wait, s.")
    max_backoff: float = Field(default=5.0, gt=0, description="Longest wait, s.")
    jitter: float = Field(default=0.2, ge=0, description="Up to this much added at random, s.")


class CircuitSettings(_Model):
    """When the legacy system counts as down, and how often to look whether it is back."""

    failure_threshold: int = Field(
        default=5, ge=1, description="Failed calls in a row (retriable errors) that open it."
    )
    probe_interval: float = Field(
        default=1.0, gt=0, description="First wait before probing with check(), s."
    )
    max_probe_interval: float = Field(
        default=30.0, gt=0, description="Longest wait between probes (they back off), s."
    )
    check_timeout: float = Field(
        default=5.0, gt=0, description="A check() taking longer counts as failed, s."
    )


class HealthSettings(_Model):
    """The connector's own HTTP endpoint: ``GET /health`` (JSON) and ``GET /metrics``."""

    host: str = Field(default="127.0.0.1", description="Address to bind (0.0.0.0 in containers).")
    port: int | None = Field(
        default=None, ge=0, le=65535, description="Port; unset: no endpoint; 0: any free port."
    )


class ServiceBinding(_Model):
    """One service a provider connector answers; connectors extend it with their call."""

    service: str = Field(pattern=_SERVICE_ID, description="Full service id, e.g. x.y.v1.")


class ConnectorConfig(_Model):
    """What every connector has: its kind, its name, its agency and the SDK's knobs."""

    kind: str = Field(description="The connector kind (soap, rest, sql, outbox, filedrop ...).")
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="This instance's name: metrics label, log context, consumer group suffix.",
    )
    agency: str = Field(pattern=_AGENCY, description="The agency code (catalog) it works for.")
    concurrency: int = Field(default=16, ge=1, le=1024, description="Inquiries at once.")
    retry: RetrySettings = RetrySettings()
    circuit: CircuitSettings = CircuitSettings()
    health: HealthSettings = HealthSettings()


class ProviderConfig(ConnectorConfig):
    """A provider connector: answers the services it binds from ``<prefix>.in.<agency>``."""

    services: tuple[ServiceBinding, ...] = Field(min_length=1)
    group_id: str | None = Field(
        default=None,
        description="Consumer group; unset: the agency's provider group (instances share it).",
    )

    def binding(self, service: str) -> ServiceBinding:
        """The binding of ``service`` (KeyError if this connector does not answer it)."""
        for bound in self.services:
            if bound.service == service:
                return bound
        raise KeyError(service)


class RequesterConfig(ConnectorConfig):
    """A requester connector: turns legacy events into inquiries, outcomes back."""

    subsystem: str | None = Field(
        default=None, pattern=_SUBSYSTEM, description="The requester's subsystem, if any."
    )
    poll_interval: float = Field(
        default=1.0, gt=0, description="Wait between polls of the source when it had nothing, s."
    )


# --- loading ------------------------------------------------------------------------------------


@overload
def load_config(path: Path | str, model: None = None) -> ConnectorConfig: ...
@overload
def load_config(path: Path | str, model: type[C]) -> C: ...
def load_config(path: Path | str, model: type[ConnectorConfig] | None = None) -> ConnectorConfig:
    """Read and validate a connector config file; :class:`ConnectorConfigError` listing
    every problem with its field path.

    ``model`` defaults to the config class registered for the file's ``kind``.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectorConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConnectorConfigError(f"{path} is not valid YAML: {_yaml_where(exc)}") from exc
    return parse_config(raw, model, source=str(path))


@overload
def parse_config(raw: Any, model: None = None, *, source: str = "config") -> ConnectorConfig: ...
@overload
def parse_config(raw: Any, model: type[C], *, source: str = "config") -> C: ...
def parse_config(
    raw: Any, model: type[ConnectorConfig] | None = None, *, source: str = "config"
) -> ConnectorConfig:
    """Validate an already-parsed config mapping (see :func:`load_config`)."""
    if not isinstance(raw, Mapping):
        raise _error(source, ["(top level): must be a mapping of settings"])
    problems: list[str] = []
    data = _expand_env(raw, (), problems)
    if model is None:
        from connectors._registry import config_class

        kind = data.get("kind")
        if not isinstance(kind, str):
            raise _error(source, ["kind: field required (one of `exchange connector list`)"])
        cls: type[ConnectorConfig] = config_class(kind)
    else:
        cls = model
    try:
        config = cls.model_validate(data)
    except ValidationError as exc:
        problems += config_problems(exc)
    if problems:
        raise _error(source, problems)
    return config


def config_problems(exc: ValidationError) -> list[str]:
    """One line per problem: ``field.path[0].name: message`` (never the input value)."""
    errors = exc.errors(include_url=False, include_input=False)
    # A list whose items failed also reports itself as too short: the items say it better.
    parents = {error["loc"][:-1] for error in errors} | {error["loc"][:-2] for error in errors}
    lines = []
    for error in errors:
        if error["type"] == "too_short" and error["loc"] in parents:
            continue
        where = _path(error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (a typo?)"
        lines.append(f"{where}: {message}")
    return lines


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _expand_env(value: Any, loc: tuple[int | str, ...], problems: list[str]) -> Any:
    """Replace ``${NAME}`` by the environment variable; an unset one is a problem."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.append(f"{_path(loc) or '(top level)'}: environment variable {name} unset")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, Mapping):
        return {k: _expand_env(v, (*loc, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*loc, i), problems) for i, v in enumerate(value)]
    return value


def _error(source: str, problems: list[str]) -> ConnectorConfigError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    listing = "; ".join(problems)
    return ConnectorConfigError(f"{source}: {count}: {listing}", problems=problems)


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)
