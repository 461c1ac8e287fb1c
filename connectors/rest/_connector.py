"""The ``rest`` connector: one httpx call per inquiry, errors sorted for the SDK."""

from __future__ import annotations

from typing import Any

import httpx

from connectors._mapping import fill, inquiry_scope, jsonable, render, resolve
from connectors._sdk import ProviderConnector
from connectors.rest._config import BasicAuth, BearerAuth, RestBinding, RestConfig
from exchange._answer import Answer, Inquiry
from exchange._errors import PermanentError, RetriableError

#: Statuses that say "try again later" rather than "no".
_RETRIABLE_STATUS = frozenset({408, 425, 429})


class RestConnector(ProviderConnector[RestConfig, RestBinding]):
    """Answers each bound service with one HTTP call (see :mod:`connectors.rest`)."""

    config_class = RestConfig

    def __init__(self, config: RestConfig) -> None:
        super().__init__(config)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the connection pool (no request is made)."""
        config = self.config
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            timeout=config.timeout,
            headers={**config.headers, "Accept": "application/json"},
            auth=_auth(config.auth),
            verify=config.verify_tls,
            limits=httpx.Limits(max_connections=config.concurrency),
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check(self) -> None:
        """GET ``health_path``: any status below 500 means the system is up."""
        path = self.config.health_path
        response = await self._send("GET", path, path)
        if response.status_code >= 500:
            raise RetriableError(f"health check answered {response.status_code}")

    async def answer(self, inquiry: Inquiry, binding: RestBinding) -> Answer:
        """Call, then map: not-found statuses, errors, or the response template."""
        scope = inquiry_scope(inquiry)
        response = await self._send(
            binding.method,
            fill(binding.path, scope),
            binding.path,
            params=_params(render(binding.query, scope)),
            json=None if binding.body is None else jsonable(render(binding.body, scope)),
            headers=binding.headers,
        )
        status = response.status_code
        if status in binding.not_found_status:
            return Answer.not_found()
        if status >= 400:
            raise PermanentError(f"{binding.method} answered {status}", code=f"HTTP_{status}")
        try:
            result = response.json() if response.content else None
        except ValueError as exc:
            raise PermanentError("the response is not JSON", code="BAD_LEGACY_RESPONSE") from exc
        scope["result"] = result
        if binding.found_when is not None and not resolve(binding.found_when, scope):
            return Answer.not_found()
        return Answer.found(render(binding.response, scope))

    async def _send(self, method: str, url: str, template: str, **options: Any) -> httpx.Response:
        """One request; transport failures, timeouts, 5xx and 429 become RetriableError.

        Messages name the path ``template``, not the ``url`` filled in from it: a path can
        carry a national id, and the message is logged and becomes the outcome's error text.
        """
        if self._client is None:
            raise RetriableError("the connector is not started")
        try:
            response = await self._client.request(method, url, **options)
        except httpx.TimeoutException as exc:
            raise RetriableError(f"{method} {template} timed out", code="LEGACY_TIMEOUT") from exc
        except httpx.TransportError as exc:
            raise RetriableError(f"{method} {template} failed: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in _RETRIABLE_STATUS:
            raise RetriableError(
                f"{method} answered {response.status_code}", code=f"HTTP_{response.status_code}"
            )
        return response


def _auth(auth: BearerAuth | BasicAuth | None) -> httpx.Auth | None:
    if isinstance(auth, BasicAuth):
        return httpx.BasicAuth(auth.username, auth.password.get_secret_value())
    if isinstance(auth, BearerAuth):
        return _Bearer(auth.token.get_secret_value())
    return None


class _Bearer(httpx.Auth):
    """Adds the bearer token; the token never appears in a repr or a log line."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_Bearer(**********)"


def _params(rendered: Any) -> dict[str, str]:
    """Query parameters as text, dropping the ones whose value is None."""
    if not isinstance(rendered, dict):
        return {}
    return {key: str(jsonable(value)) for key, value in rendered.items() if value is not None}
