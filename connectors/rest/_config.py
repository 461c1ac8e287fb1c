"""The ``rest`` connector's config: base URL, auth, timeouts and one binding per service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors._config import ProviderConfig, ServiceBinding


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BearerAuth(_Model):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr


class BasicAuth(_Model):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: str
    password: SecretStr


class RestBinding(ServiceBinding):
    """One service answered by one HTTP call."""

    method: Literal["GET", "POST", "PUT", "PATCH"] = "GET"
    path: str = Field(description="Path template after base_url: /persons/{payload.national_id}")
    query: dict[str, Any] = Field(default_factory=dict, description="Query parameter templates.")
    body: Any = Field(default=None, description="JSON body template (None: no body).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    response: Any = Field(
        default="$result",
        description="Template of the response payload; roots: result (the JSON), payload, inquiry.",
    )
    not_found_status: tuple[int, ...] = Field(
        default=(404,), description="HTTP statuses that answer NOT_FOUND."
    )
    found_when: str | None = Field(
        default=None, description="A path (result.found) whose falsy value answers NOT_FOUND."
    )


class RestConfig(ProviderConfig):
    """A provider connector calling an HTTP JSON API."""

    kind: Literal["rest"] = "rest"
    base_url: str = Field(pattern=r"^https?://", description="http(s)://host[:port][/prefix]")
    timeout: float = Field(default=5.0, gt=0, description="Per-call timeout, s.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers on every call.")
    auth: BearerAuth | BasicAuth | None = Field(default=None, discriminator="type")
    verify_tls: bool = True
    health_path: str = Field(
        default="/", description="check() GETs this; any status below 500 means reachable."
    )
    services: tuple[RestBinding, ...] = Field(min_length=1)
