"""Scenario ``relay``: the bus's hops, with a relay that forwards bytes by header.

    requester ─▶ out.REQ ─▶ relay ─▶ in.PROV ─▶ provider
    provider ─▶ out.PROV ─▶ relay ─▶ replies.REQ ─▶ requester

The relay reads the ``exchange-type`` and ``bench-to`` headers and nothing else: no decoding,
policy, correlation state, audit or metrics, and no transactions (the bus writes each batch in
one Kafka transaction). It is what the topology costs in Python at best, so the bus's figures
divided by these say what the bus's own work costs.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

from exchange.bench._loadgen import Requester
from exchange.bench._rawkafka import (
    H_FROM,
    H_TO,
    H_TYPE,
    Headers,
    Route,
    create_topics,
    delete_topics,
    header,
    payload,
    raw_requester,
    reply_headers,
    serve,
)
from exchange.bench._scenario import ProcessSpec, ScenarioEnv, python_process

REQUESTER = "REQ"
PROVIDER = "PROV"


def _topic(env: ScenarioEnv, kind: str, agency: str) -> str:
    return f"{env.run_id}.{kind}.{agency}"


def _all_topics(env: ScenarioEnv) -> list[str]:
    return [
        _topic(env, "out", REQUESTER),
        _topic(env, "replies", REQUESTER),
        _topic(env, "out", PROVIDER),
        _topic(env, "in", PROVIDER),
    ]


class RelayScenario:
    """Same hops as the bus, forwarding bytes by header."""

    name = "relay"
    description = "requester -> relay -> provider -> relay -> requester, bytes by header"

    async def prepare(self, env: ScenarioEnv) -> None:
        """Create the four topics of the two agencies."""
        await create_topics(env, _all_topics(env))

    def processes(self, env: ScenarioEnv) -> list[ProcessSpec]:
        """The relay, then the provider."""
        return [
            python_process("relay", "exchange.bench._relay:relay", env),
            python_process("provider", "exchange.bench._relay:provider", env),
        ]

    def requester(self, env: ScenarioEnv) -> AbstractAsyncContextManager[Requester]:
        """Writes to ``out.REQ``, reads ``replies.REQ``."""
        headers: Headers = [
            (H_TYPE, b"request"),
            (H_FROM, REQUESTER.encode()),
            (H_TO, PROVIDER.encode()),
        ]
        return raw_requester(
            env,
            request_topic=_topic(env, "out", REQUESTER),
            reply_topic=_topic(env, "replies", REQUESTER),
            headers=headers,
        )

    async def cleanup(self, env: ScenarioEnv) -> None:
        """Delete the four topics."""
        await delete_topics(env, _all_topics(env))


def route(env: ScenarioEnv) -> Route:
    """Requests to ``in.<to>``, responses to ``replies.<to>``, anything else dropped."""
    kinds = {b"request": "in", b"response": "replies"}

    def _route(rec: Any) -> tuple[str, Headers, bytes] | None:
        kind = kinds.get(header(rec.headers, H_TYPE) or b"")
        to = header(rec.headers, H_TO)
        if kind is None or to is None:
            return None
        return f"{env.run_id}.{kind}.{to.decode()}", list(rec.headers), rec.value

    return _route


async def relay(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Forward from both agencies' ``out`` topics."""
    outs = [_topic(env, "out", REQUESTER), _topic(env, "out", PROVIDER)]
    await serve(env, "relay", outs, route(env), stop)


async def provider(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Answer every request from ``in.PROV`` onto ``out.PROV``."""
    answer = payload(env.payload_bytes)
    out = _topic(env, "out", PROVIDER)

    def _route(rec: Any) -> tuple[str, Headers, bytes]:
        return out, reply_headers(rec.headers), answer

    await serve(env, "provider", [_topic(env, "in", PROVIDER)], _route, stop)


SCENARIO = RelayScenario()
