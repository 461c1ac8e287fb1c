"""The ``soap`` connector's config: the WSDL, its endpoint, auth and one binding per service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors._config import ProviderConfig, ServiceBinding


class SoapBasicAuth(BaseModel):
    """HTTP basic authentication on the SOAP endpoint (and the WSDL)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    password: SecretStr


class SoapBinding(ServiceBinding):
    """One service answered by one SOAP operation."""

    operation: str = Field(description="The WSDL operation to call (VerifyPerson).")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Operation arguments: templates over payload, inquiry."
    )
    response: Any = Field(
        default="$result", description="Response payload template; roots: result, payload, inquiry."
    )
    not_found_faults: tuple[str, ...] = Field(
        default=(), description="Fault codes (without namespace prefix) that answer NOT_FOUND."
    )
    found_when: str | None = Field(
        default=None, description="A path (result.Found) whose falsy value answers NOT_FOUND."
    )


class SoapConfig(ProviderConfig):
    """A provider connector calling a SOAP/WSDL web service."""

    kind: Literal["soap"] = "soap"
    wsdl: str = Field(description="URL or file path of the WSDL.")
    endpoint: str | None = Field(
        default=None, description="Service address overriding the WSDL's (another host, a proxy)."
    )
    service_name: str | None = Field(default=None, description="WSDL service (default: first).")
    port_name: str | None = Field(default=None, description="WSDL port (default: first).")
    timeout: float = Field(default=5.0, gt=0, description="Per-call timeout, s.")
    auth: SoapBasicAuth | None = None
    services: tuple[SoapBinding, ...] = Field(min_length=1)
