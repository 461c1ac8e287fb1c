"""The ``sql`` connector: one parameterised query per inquiry (SQLAlchemy async Core)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import ArgumentError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors._mapping import MappingError, inquiry_scope, render, resolve
from connectors._sdk import ProviderConnector
from connectors.sql._config import SqlBinding, SqlConfig
from connectors.sql._errors import translate
from exchange._answer import Answer, Inquiry
from exchange._catalog_model import Catalog
from exchange._errors import ConnectorConfigError, RetriableError

__all__ = ["SqlConnector", "bind_names"]


def bind_names(query: str) -> list[str]:
    """The named parameters of ``query`` as SQLAlchemy reads them (``:name``)."""
    return list(text(query).compile().params)


class SqlConnector(ProviderConnector[SqlConfig, SqlBinding]):
    """Answers each bound service with one query (see :mod:`connectors.sql`)."""

    config_class = SqlConfig

    def __init__(self, config: SqlConfig) -> None:
        super().__init__(config)
        self._engine: AsyncEngine | None = None
        #: Per service: the compiled query and every parameter's template.
        self._queries: dict[str, tuple[TextClause, dict[str, Any]]] = {
            binding.service: _prepare(binding) for binding in config.services
        }

    def bind(self, catalog: Catalog) -> None:
        """Check that parameters bound by name are fields of the services' requests."""
        problems = []
        for index, binding in enumerate(self.config.services):
            fields = _request_fields(catalog, binding.service)
            if fields is None:
                problems.append(f"services[{index}].service: {binding.service} not in catalog")
                continue
            for name in bind_names(binding.query):
                if name not in binding.params and name not in fields:
                    problems.append(
                        f"services[{index}].query: :{name} is not a request field of "
                        f"{binding.service}; map it in params"
                    )
        if problems:
            raise ConnectorConfigError(
                f"{self.config.name}: {'; '.join(problems)}", problems=problems
            )

    async def start(self) -> None:
        """Create the engine and its pool (no connection is made yet)."""
        url = self.config.url.get_secret_value()
        try:
            self._engine = create_async_engine(
                url,
                pool_pre_ping=True,  # a pooled connection from before a restart is replaced
                **_pool_options(url, self.config.pool_size),
            )
        except (ArgumentError, InvalidRequestError, ImportError) as exc:
            raise ConnectorConfigError(
                f"url: cannot use this database URL ({type(exc).__name__}: {exc}); an asyncio "
                "driver is required (postgresql+asyncpg://, sqlite+aiosqlite://)",
                problems=["url: needs an installed asyncio driver"],
            ) from exc

    async def close(self) -> None:
        """Close the pool."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def check(self) -> None:
        """Run ``check_query``."""
        await self._run(text(self.config.check_query), {}, 1, what="the check query")

    async def answer(self, inquiry: Inquiry, binding: SqlBinding) -> Answer:
        """Bind, query, map: no row (or ``found_when`` falsy) answers NOT_FOUND."""
        query, templates = self._queries[binding.service]
        scope = inquiry_scope(inquiry)
        params = {name: render(template, scope) for name, template in templates.items()}
        rows = await self._run(query, params, binding.max_rows, what=f"the {binding.service} query")
        if not rows:
            return Answer.not_found()
        scope["row"], scope["rows"] = rows[0], rows
        if binding.found_when is not None and not resolve(binding.found_when, scope):
            return Answer.not_found()
        payload = render(binding.response, scope)
        if not isinstance(payload, dict):
            raise MappingError(f"the response template gave {type(payload).__name__}, not a dict")
        return Answer.found(payload)

    async def _run(
        self, query: TextClause, params: Mapping[str, Any], max_rows: int, *, what: str
    ) -> Sequence[dict[str, Any]]:
        if self._engine is None:
            raise RetriableError("the connector is not started")
        try:
            async with asyncio.timeout(self.config.timeout), self._engine.connect() as conn:
                result = await conn.execute(query, dict(params))
                rows = [dict(row) for row in result.mappings().fetchmany(max_rows)]
                if self.config.commit:
                    await conn.commit()
                return rows
        except Exception as exc:
            raise translate(exc, what) from exc


def _prepare(binding: SqlBinding) -> tuple[TextClause, dict[str, Any]]:
    templates = {name: f"$payload.{name}" for name in bind_names(binding.query)}
    templates.update(binding.params)
    return text(binding.query), templates


def _pool_options(url: str, pool_size: int) -> dict[str, Any]:
    """A bounded pool for server databases; SQLite's own pool class takes no size."""
    if url.startswith("sqlite"):
        return {}
    return {"pool_size": pool_size, "max_overflow": 0}


def _request_fields(catalog: Catalog, service_id: str) -> set[str] | None:
    service = catalog.service(service_id)
    if service is None or service.latest_request is None:
        return None
    definition = json.loads(service.latest_request.path.read_text(encoding="utf-8"))
    return {field["name"] for field in definition.get("fields", ())}
