"""Scenario ``direct``: requester and provider over two topics, nothing in between (the floor).

requester ──▶ <run>.requests ──▶ provider ──▶ <run>.replies ──▶ requester
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

from exchange.bench._loadgen import Requester
from exchange.bench._rawkafka import (
    H_TYPE,
    create_topics,
    delete_topics,
    payload,
    raw_requester,
    reply_headers,
    serve,
)
from exchange.bench._scenario import ProcessSpec, ScenarioEnv, python_process


def _topics(env: ScenarioEnv) -> tuple[str, str]:
    return f"{env.run_id}.requests", f"{env.run_id}.replies"


class DirectScenario:
    """Plain aiokafka request and reply: what Kafka itself costs."""

    name = "direct"
    description = "requester -> provider -> requester over two topics, plain aiokafka"

    async def prepare(self, env: ScenarioEnv) -> None:
        """Create the request and reply topics."""
        await create_topics(env, _topics(env))

    def processes(self, env: ScenarioEnv) -> list[ProcessSpec]:
        """One provider process."""
        return [python_process("provider", "exchange.bench._direct:provider", env)]

    def requester(self, env: ScenarioEnv) -> AbstractAsyncContextManager[Requester]:
        """Writes requests, reads replies."""
        requests, replies = _topics(env)
        return raw_requester(
            env, request_topic=requests, reply_topic=replies, headers=[(H_TYPE, b"request")]
        )

    async def cleanup(self, env: ScenarioEnv) -> None:
        """Delete the two topics."""
        await delete_topics(env, _topics(env))


async def provider(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Answer every request at once with a response of the payload size."""
    requests, replies = _topics(env)
    answer = payload(env.payload_bytes)

    def route(rec: Any) -> tuple[str, list[tuple[str, bytes]], bytes]:
        return replies, reply_headers(rec.headers), answer

    await serve(env, "provider", [requests], route, stop)


SCENARIO = DirectScenario()
