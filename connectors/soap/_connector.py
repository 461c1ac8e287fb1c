"""The ``soap`` connector: zeep's async client over httpx, faults and failures sorted."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.transports import AsyncTransport

from connectors._mapping import inquiry_scope, render, resolve
from connectors._sdk import ProviderConnector
from connectors.soap._config import SoapBinding, SoapConfig
from exchange._answer import Answer, Inquiry
from exchange._errors import PermanentError, RetriableError


class SoapConnector(ProviderConnector[SoapConfig, SoapBinding]):
    """Answers each bound service with one SOAP call (see :mod:`connectors.soap`)."""

    config_class = SoapConfig

    def __init__(self, config: SoapConfig) -> None:
        super().__init__(config)
        self._http: httpx.AsyncClient | None = None
        self._client: zeep.AsyncClient | None = None
        self._service: Any = None
        self._loading = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP pool."""
        if self._http is not None:
            await self._http.aclose()
        self._http = self._client = self._service = None

    async def check(self) -> None:
        """Load the WSDL if not yet, then reach the endpoint: any HTTP answer below 500."""
        await self._ready()
        assert self._http is not None
        address = self._address()
        try:
            response = await self._http.get(address)
        except httpx.HTTPError as exc:
            raise RetriableError(f"{address} unreachable: {type(exc).__name__}") from exc
        # A SOAP endpoint may well answer a GET with 405 or a 500 fault: it is up. A gateway
        # or an overloaded server says otherwise.
        if response.status_code in (502, 503, 504):
            raise RetriableError(f"{address} answered {response.status_code}")

    async def answer(self, inquiry: Inquiry, binding: SoapBinding) -> Answer:
        """Call the operation, then map the result (or the fault)."""
        service = await self._ready()
        scope = inquiry_scope(inquiry)
        arguments = render(binding.arguments, scope)
        try:
            result = await getattr(service, binding.operation)(**arguments)
        except zeep.exceptions.Fault as fault:
            return _fault_answer(fault, binding)
        except zeep.exceptions.TransportError as exc:
            if exc.status_code >= 500:
                raise RetriableError(f"HTTP {exc.status_code}", code="LEGACY_UNAVAILABLE") from exc
            raise PermanentError(f"HTTP {exc.status_code}", code=f"HTTP_{exc.status_code}") from exc
        except httpx.TimeoutException as exc:
            raise RetriableError(f"{binding.operation} timed out", code="LEGACY_TIMEOUT") from exc
        except httpx.TransportError as exc:
            raise RetriableError(f"{binding.operation} failed: {type(exc).__name__}") from exc
        # zeep is partly untyped.
        scope["result"] = zeep.helpers.serialize_object(result, dict)  # type: ignore[no-untyped-call]
        if binding.found_when is not None and not resolve(binding.found_when, scope):
            return Answer.not_found()
        return Answer.found(render(binding.response, scope))

    async def _ready(self) -> Any:
        """The bound service proxy, loading the WSDL the first time (RetriableError if down)."""
        async with self._loading:
            if self._service is None:
                await self._load()
        return self._service

    async def _load(self) -> None:
        config = self.config
        auth = None
        if config.auth is not None:
            auth = (config.auth.username, config.auth.password.get_secret_value())
        self._http = self._http or httpx.AsyncClient(timeout=config.timeout, auth=auth)
        try:
            # Fetching and parsing the WSDL is blocking I/O and CPU: off the event loop.
            client = await asyncio.to_thread(_load_wsdl, config, self._http, auth)
        except (httpx.HTTPError, OSError) as exc:
            raise RetriableError(f"cannot load the WSDL {config.wsdl}: {exc}") from exc
        service = client.bind(config.service_name, config.port_name)
        if config.endpoint is not None:
            binding_name = service._binding.name.text  # zeep has no public getter
            # zeep is partly untyped.
            service = client.create_service(binding_name, config.endpoint)  # type: ignore[no-untyped-call]
        self._client, self._service = client, service

    def _address(self) -> str:
        if self.config.endpoint is not None:
            return self.config.endpoint
        return str(self._service._binding_options["address"])  # zeep has no public getter


def _load_wsdl(
    config: SoapConfig, http: httpx.AsyncClient, auth: tuple[str, str] | None
) -> zeep.AsyncClient:
    with httpx.Client(timeout=config.timeout, auth=auth) as wsdl_http:
        # zeep is partly untyped.
        transport = AsyncTransport(client=http, wsdl_client=wsdl_http)  # type: ignore[no-untyped-call]
        return zeep.AsyncClient(config.wsdl, transport=transport)  # type: ignore[no-untyped-call]


def _fault_answer(fault: zeep.exceptions.Fault, binding: SoapBinding) -> Answer:
    code = str(fault.code or "Fault").rpartition(":")[2]
    if code in binding.not_found_faults:
        return Answer.not_found()
    raise PermanentError(f"SOAP fault {code}: {fault.message}", code=code)
